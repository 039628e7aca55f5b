//! The module host: creates the instances of the modules a configuration loads (their state,
//! built once from their `modparam`s), lets them register statistics and MI commands, keeps
//! them across `reload_routes`, and stops them (flushing what they hold) at shutdown.
//!
//! Each module crate exposes a constructor taking what it needs; `start` calls the ones the
//! configuration loads, in dependency order (usrloc before registrar, auth before auth_db).

use std::sync::Arc;

use sipox_cfg_syntax::{Config, Item, Value};
use sipox_mi::Mi;
use sipox_script::{EventFn, Instances, LogFn};
use sipox_stats::Stats;

/// What module constructors get.
pub(crate) struct InitCx<'a> {
    /// The parsed configuration.
    pub(crate) ast: &'a Config,
    /// Names of the loaded modules.
    pub(crate) loaded: &'a [String],
    /// The statistics registry.
    pub(crate) stats: &'a Arc<Stats>,
    /// Background logging.
    pub(crate) log: LogFn,
    /// Raises an event (runs `event_route[name]` on the runtime's event thread).
    pub(crate) events: EventFn,
}

impl InitCx<'_> {
    /// True when the configuration loads `module`.
    pub(crate) fn loads(&self, module: &str) -> bool {
        self.loaded.iter().any(|m| m == module)
    }

    /// The core's `db_default_url` (the last one given), the `db_url` of modules that set none.
    pub(crate) fn db_default_url(&self) -> Option<String> {
        self.ast.items.iter().rev().find_map(|i| match i {
            Item::Param(p) if p.name == "db_default_url" => match &p.value {
                Value::Str(s) => Some(s.clone()),
                _ => None,
            },
            _ => None,
        })
    }

    /// Every `modparam` addressed to `module` (by name or by a `"a|b"` regex), in order.
    pub(crate) fn modparams(&self, module: &str) -> Vec<(String, Value)> {
        modparams(self.ast, module)
    }
}

/// Every `modparam` addressed to `module`, in order: exact name, or a regex over the name
/// (OpenSIPS accepts `modparam("usrloc|registrar", ...)`).
pub(crate) fn modparams(ast: &Config, module: &str) -> Vec<(String, Value)> {
    ast.items
        .iter()
        .filter_map(|i| match i {
            Item::ModParam(mp) if module_matches(&mp.module, module) => {
                Some((mp.param.clone(), mp.value.clone()))
            }
            _ => None,
        })
        .collect()
}

fn module_matches(pattern: &str, module: &str) -> bool {
    if pattern == module {
        return true;
    }
    if !pattern.chars().any(|c| "|*.+?[]()^$\\".contains(c)) {
        return false;
    }
    regex::Regex::new(&format!("^(?:{pattern})$")).is_ok_and(|re| re.is_match(module))
}

type MiHook = Box<dyn Fn(&Mi) -> Result<(), String> + Send + Sync>;
type StopHook = Box<dyn Fn() + Send + Sync>;

/// The running modules.
#[derive(Default)]
pub(crate) struct ModHost {
    /// Instances handed to the compiler (and kept for reloads).
    pub(crate) instances: Instances,
    mi_hooks: Vec<MiHook>,
    stops: Vec<StopHook>,
}

impl std::fmt::Debug for ModHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModHost")
            .field("instances", &self.instances)
            .finish_non_exhaustive()
    }
}

impl ModHost {
    /// Registers what a module adds to the MI once it exists (commands, services).
    pub(crate) fn on_mi(&mut self, f: impl Fn(&Mi) -> Result<(), String> + Send + Sync + 'static) {
        self.mi_hooks.push(Box::new(f));
    }

    /// Registers a shutdown step (flush a write-back cache, stop a timer). Steps run in
    /// reverse order of registration.
    pub(crate) fn on_stop(&mut self, f: impl Fn() + Send + Sync + 'static) {
        self.stops.push(Box::new(f));
    }

    /// Runs the MI hooks.
    pub(crate) fn register_mi(&self, mi: &Mi) -> Result<(), String> {
        self.mi_hooks.iter().try_for_each(|h| h(mi))
    }

    /// Runs the shutdown steps (idempotence is the caller's).
    pub(crate) fn stop(&self) {
        for s in self.stops.iter().rev() {
            s();
        }
    }
}

/// Creates the instances of the loaded modules.
pub(crate) fn start(cx: &InitCx<'_>) -> Result<ModHost, String> {
    let mut host = ModHost::default();
    let log = Arc::clone(&cx.log);
    sipox_db::set_log_sink(Arc::new(move |l, t| log(l, &format!("db: {t}"))));
    create_embedded_databases(cx)?;
    // Module constructors go here, in dependency order:
    // --- usrloc ---
    if cx.loads("usrloc") {
        let mut p = sipox_mod_usrloc::Params::from_modparams(&cx.modparams("usrloc"))
            .map_err(|e| e.to_string())?;
        if p.db_url.is_none() {
            p.db_url = cx.db_default_url();
        }
        let ul = Arc::new(sipox_mod_usrloc::Usrloc::new(p).map_err(|e| e.to_string())?);
        let log = Arc::clone(&cx.log);
        ul.set_log(Arc::new(move |l, t| log(l, t)));
        // Only a script with E_UL_* event routes pays for building and queueing the events.
        if has_event_routes(cx.ast, "E_UL_") {
            let ev = Arc::clone(&cx.events);
            ul.set_event_sink(Arc::new(move |name, params| ev(name, params)));
        }
        ul.attach_stats(Arc::clone(cx.stats));
        ul.start_timer().map_err(|e| e.to_string())?;
        host.instances.insert(Arc::clone(&ul));
        let mi_ul = Arc::clone(&ul);
        host.on_mi(move |mi| {
            mi.provide(Arc::clone(&mi_ul));
            mi.register_all(&sipox_mod_usrloc::mi::CMDS)
                .map_err(|e| e.to_string())
        });
        host.on_stop(move || ul.shutdown(std::time::Duration::from_secs(10)));
    }
    // --- registrar ---
    if cx.loads("registrar") {
        let ul = host
            .instances
            .get::<sipox_mod_usrloc::Usrloc>()
            .ok_or("registrar needs the usrloc module (loadmodule \"usrloc.so\")")?;
        let p = sipox_mod_registrar::Params::from_modparams(&cx.modparams("registrar"))?;
        let reg = sipox_mod_registrar::Registrar::with_stats(p, ul, cx.stats)?;
        host.instances.insert(Arc::new(reg));
    }
    // --- auth ---
    let auth = if cx.loads("auth") {
        let a = sipox_mod_auth::Auth::from_modparams(&cx.modparams("auth"), fill_random)?;
        host.instances.insert(Arc::clone(&a));
        Some(a)
    } else {
        None
    };
    // --- auth_db ---
    if cx.loads("auth_db") {
        let a = auth.ok_or("auth_db needs the auth module (loadmodule \"auth.so\")")?;
        let default_url = cx.db_default_url();
        let m = sipox_mod_auth::AuthDb::from_modparams(
            &cx.modparams("auth_db"),
            default_url.as_deref(),
            a,
        )?;
        host.instances.insert(m);
    }
    Ok(host)
}

/// Fills `b` from the operating system's random source (start-up only: a module's default
/// secret), falling back to the standard library's randomly keyed hasher.
fn fill_random(b: &mut [u8]) {
    use std::hash::{BuildHasher, Hasher};
    use std::io::Read;
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(b))
        .is_ok();
    if !ok {
        for (i, chunk) in b.chunks_mut(8).enumerate() {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_usize(i);
            let v = h.finish().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// True when the configuration has an `event_route` whose name starts with `prefix`.
fn has_event_routes(ast: &Config, prefix: &str) -> bool {
    ast.items.iter().any(|i| {
        matches!(i, Item::Route(r) if r.kind == sipox_cfg_syntax::RouteKind::Event
            && r.name.as_deref().is_some_and(|n| n.trim().starts_with(prefix)))
    })
}

/// The embedded default: a `sqlite://` database the configuration names (`db_default_url`
/// or a module's `db_url`) that does not exist yet is created with the OpenSIPS 3.5 schema,
/// so a fresh install starts without a set-up step. Existing files are never touched.
fn create_embedded_databases(cx: &InitCx<'_>) -> Result<(), String> {
    let mut urls: Vec<String> = Vec::new();
    for i in &cx.ast.items {
        let url = match i {
            Item::Param(p) if p.name == "db_default_url" => &p.value,
            Item::ModParam(mp) if mp.param == "db_url" => &mp.value,
            _ => continue,
        };
        if let Value::Str(u) = url
            && !urls.contains(u)
        {
            urls.push(u.clone());
        }
    }
    for url in urls {
        let Ok(u) = sipox_db::DbUrl::parse(&url) else {
            continue;
        };
        let path = std::path::Path::new(&u.database);
        if u.scheme != "sqlite" || u.database == ":memory:" || path.exists() {
            continue;
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        sipox_db::schema::create(&url, &[])
            .map_err(|e| format!("cannot create the database {}: {e}", u.masked()))?;
        (cx.log)(
            2,
            &format!(
                "created {} with the OpenSIPS 3.5 schema (add users with `sipox db user add`)",
                u.masked()
            ),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modparam_regex_matching() {
        assert!(module_matches("usrloc", "usrloc"));
        assert!(module_matches("usrloc|registrar", "registrar"));
        assert!(module_matches("auth.*", "auth_db"));
        assert!(!module_matches("usrloc", "registrar"));
        assert!(!module_matches("usrloc|registrar", "auth"));
    }
}
