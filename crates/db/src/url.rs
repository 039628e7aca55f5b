//! Database URLs in OpenSIPS's forms: `scheme://[user[:password]@]host[:port]/database`,
//! `sqlite:///abs/path.db` (or `sqlite://rel/path.db`), `text:///dir`.

use crate::DbError;

/// A parsed database URL.
#[derive(Clone, PartialEq, Eq)]
pub struct DbUrl {
    /// Scheme: `sqlite`, `postgres`, `mysql`, `text`.
    pub scheme: String,
    /// User name, if given.
    pub user: Option<String>,
    /// Password, if given.
    pub password: Option<String>,
    /// Host, if given (`None` for file-based drivers).
    pub host: Option<String>,
    /// Port, if given.
    pub port: Option<u16>,
    /// Database name (server drivers) or file/directory path (sqlite, text).
    pub database: String,
}

impl std::fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.masked())
    }
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%' && i + 2 < b.len())
            .then(|| std::str::from_utf8(&b[i + 1..i + 3]).ok())
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        if let Some(v) = hex {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl DbUrl {
    /// Parses a URL.
    pub fn parse(url: &str) -> Result<Self, DbError> {
        let bad = |why: &str| DbError::BadUrl {
            url: mask(url),
            why: why.to_owned(),
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("expected scheme://..."))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme.is_empty() {
            return Err(bad("empty scheme"));
        }
        if scheme == "sqlite" || scheme == "text" {
            // sqlite:///var/db/x.db → /var/db/x.db; sqlite://x.db → x.db
            if rest.is_empty() {
                return Err(bad("missing path"));
            }
            return Ok(Self {
                scheme,
                user: None,
                password: None,
                host: None,
                port: None,
                database: pct_decode(rest),
            });
        }
        let (auth_host, database) = rest
            .split_once('/')
            .ok_or_else(|| bad("missing /database"))?;
        if database.is_empty() {
            return Err(bad("missing database name"));
        }
        let (auth, hostport) = match auth_host.rsplit_once('@') {
            Some((a, h)) => (Some(a), h),
            None => (None, auth_host),
        };
        let (user, password) = match auth {
            Some(a) => match a.split_once(':') {
                Some((u, p)) => (Some(pct_decode(u)), Some(pct_decode(p))),
                None => (Some(pct_decode(a)), None),
            },
            None => (None, None),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed ["))?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p.parse().map_err(|_| bad("bad port"))?),
                None => None,
            };
            (h.to_owned(), port)
        } else {
            match hostport.split_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p.parse().map_err(|_| bad("bad port"))?)),
                None => (hostport.to_owned(), None),
            }
        };
        if host.is_empty() {
            return Err(bad("missing host"));
        }
        Ok(Self {
            scheme,
            user,
            password,
            host: Some(host),
            port,
            database: pct_decode(database),
        })
    }

    /// The URL with its password replaced by `***`, for logs.
    pub fn masked(&self) -> String {
        match &self.host {
            None => format!("{}://{}", self.scheme, self.database),
            Some(h) => {
                let mut s = format!("{}://", self.scheme);
                if let Some(u) = &self.user {
                    s.push_str(u);
                    if self.password.is_some() {
                        s.push_str(":***");
                    }
                    s.push('@');
                }
                if h.contains(':') {
                    s.push_str(&format!("[{h}]"));
                } else {
                    s.push_str(h);
                }
                if let Some(p) = self.port {
                    s.push_str(&format!(":{p}"));
                }
                s.push('/');
                s.push_str(&self.database);
                s
            }
        }
    }
}

/// Masks the password of a URL that may not parse.
pub(crate) fn mask(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let auth = &url[s + 3..at];
            match auth.split_once(':') {
                Some((u, _)) => format!("{}{u}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let u = DbUrl::parse("mysql://opensips:opensipsrw@localhost/opensips").unwrap();
        assert_eq!(u.scheme, "mysql");
        assert_eq!(u.user.as_deref(), Some("opensips"));
        assert_eq!(u.password.as_deref(), Some("opensipsrw"));
        assert_eq!(u.host.as_deref(), Some("localhost"));
        assert_eq!(u.port, None);
        assert_eq!(u.database, "opensips");
        assert_eq!(u.masked(), "mysql://opensips:***@localhost/opensips");
        let u = DbUrl::parse("postgres://u:p%40ss@[::1]:5433/db").unwrap();
        assert_eq!(u.password.as_deref(), Some("p@ss"));
        assert_eq!(u.host.as_deref(), Some("::1"));
        assert_eq!(u.port, Some(5433));
        let u = DbUrl::parse("sqlite:///var/lib/sipox/sipox.db").unwrap();
        assert_eq!(u.database, "/var/lib/sipox/sipox.db");
        assert!(u.host.is_none());
        let u = DbUrl::parse("text:///etc/opensips/dbtext").unwrap();
        assert_eq!(u.database, "/etc/opensips/dbtext");
        assert!(DbUrl::parse("mysql://host").is_err());
        assert!(DbUrl::parse("nonsense").is_err());
        assert_eq!(mask("mysql://a:secret@h/db"), "mysql://a:***@h/db");
    }
}
