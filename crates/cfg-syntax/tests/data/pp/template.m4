divert(-1)
define(`LISTEN_IP', `192.0.2.5')
define(`ENABLE_TCP', `yes')
divert
# sipox m4 template test
socket = udp:LISTEN_IP:5060
ifelse(ENABLE_TCP, `yes', `socket = tcp:LISTEN_IP:5060
loadmodule "proto_tcp.so"', `')
loadmodule "proto_udp.so"
route {
ifelse(ENABLE_TCP, `yes', `	xlog("USE_TCP is on\n");', `')
	exit;
}
