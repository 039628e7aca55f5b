#!/usr/bin/env bash
# Installs the system packages the build and tests need on a fresh Debian machine.
# Idempotent: skips what is already there. Needs root (or sudo) for apt-get.
set -euo pipefail
pkgs=()
command -v mold >/dev/null 2>&1 || pkgs+=(mold)      # fast linker (scripts/cc-link falls back without it)
command -v m4 >/dev/null 2>&1 || pkgs+=(m4)          # cfg preprocessor test (-p "m4")
command -v g++ >/dev/null 2>&1 || pkgs+=(g++)        # libFuzzer build in the fuzz crate check
command -v sipp >/dev/null 2>&1 || pkgs+=(sip-tester)  # SIPp for end-to-end tests
command -v sipsak >/dev/null 2>&1 || pkgs+=(sipsak)     # OPTIONS ping end-to-end test
command -v dnsmasq >/dev/null 2>&1 || pkgs+=(dnsmasq-base)  # a real DNS server for the resolver test
command -v baresip >/dev/null 2>&1 || pkgs+=(baresip)    # real UAs registering and calling through the registrar
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || pkgs+=(python3-venv)  # opensips-cli test venv
svcs=()  # services a package may start; the sipox-db tests start their own servers instead
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { pkgs+=(postgresql); svcs+=(postgresql); }  # sipox-db tests
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || { pkgs+=(mariadb-server); svcs+=(mariadb); }  # likewise
if [ ${#pkgs[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${pkgs[@]}" >/dev/null
  for svc in "${svcs[@]}"; do $SUDO service "$svc" stop >/dev/null 2>&1 || true; done
fi
