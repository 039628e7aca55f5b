//! Module instances: the state a module creates once at start-up from its modparams (the
//! usrloc store, the auth secret, a database handle) and that survives `reload_routes`. The
//! runtime builds them before compiling and hands them to the compiler; a function's compile
//! step takes the `Arc` it needs ([`FixupCx::instances`](crate::FixupCx::instances)), so a
//! call never looks a module up per message.

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::Arc;

/// A type-keyed set of module instances.
#[derive(Clone, Default)]
pub struct Instances(Vec<(TypeId, Arc<dyn Any + Send + Sync>)>);

impl fmt::Debug for Instances {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Instances({})", self.0.len())
    }
}

/// The empty set (for compiles without a runtime).
pub(crate) static NO_INSTANCES: Instances = Instances(Vec::new());

impl Instances {
    /// Adds (or replaces) the instance of type `T`.
    pub fn insert<T: Any + Send + Sync>(&mut self, v: Arc<T>) {
        let id = TypeId::of::<T>();
        self.0.retain(|(t, _)| *t != id);
        self.0.push((id, v));
    }

    /// The instance of type `T`.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        let id = TypeId::of::<T>();
        self.0
            .iter()
            .find(|(t, _)| *t == id)
            .and_then(|(_, v)| Arc::clone(v).downcast::<T>().ok())
    }

    /// The instance of type `T` a function of `module` needs at compile time;
    /// [`FixupError::not_started`](crate::FixupError::not_started) when there is none.
    pub fn require<T: Any + Send + Sync>(&self, module: &str) -> Result<Arc<T>, crate::FixupError> {
        self.get::<T>()
            .ok_or_else(|| crate::FixupError::not_started(module))
    }

    /// Number of instances.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Where a module's background work (timers, database writers) logs:
/// `log(level, text)` with OpenSIPS levels (-1 error, 1 warning, 2 notice, 3 info, 4 debug).
pub type LogFn = Arc<dyn Fn(i32, &str) + Send + Sync>;

/// Where a module raises an event (`E_UL_CONTACT_INSERT`, ...): `events(name, params)`; the
/// runtime runs `event_route[name]` with `$param(key)` for each pair, off the caller's thread.
pub type EventFn = Arc<dyn Fn(&str, Vec<(String, String)>) + Send + Sync>;

/// How a module function answers the current request (OpenSIPS's signaling module): the
/// runtime installs one that replies statefully when the request has a transaction and
/// statelessly otherwise. `extra` holds whole header lines (`Name: value\r\n`); returns the
/// script return code (1 sent, -1 failed).
pub type ReplyFn = fn(&mut crate::MsgCx, u16, &[u8], &[u8]) -> i32;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct A(u32);

    #[test]
    fn insert_get_replace() {
        let mut i = Instances::default();
        assert!(i.get::<A>().is_none());
        i.insert(Arc::new(A(1)));
        i.insert(Arc::new(5u64));
        assert_eq!(i.get::<A>().as_deref(), Some(&A(1)));
        i.insert(Arc::new(A(2)));
        assert_eq!(i.get::<A>().as_deref(), Some(&A(2)));
        assert_eq!(i.get::<u64>().as_deref(), Some(&5));
        assert_eq!(i.len(), 2);
    }
}
