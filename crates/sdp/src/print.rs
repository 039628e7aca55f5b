//! Canonical CRLF printing.

use crate::model::{Attribute, Bandwidth, Connection, Line, Media, SessionDescription};

/// Appends the decimal form of `n`.
pub(crate) fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

fn start(out: &mut Vec<u8>, kind: u8) {
    out.push(kind);
    out.push(b'=');
}

fn end(out: &mut Vec<u8>) {
    out.extend_from_slice(b"\r\n");
}

fn raw_line(out: &mut Vec<u8>, kind: u8, value: &[u8]) {
    start(out, kind);
    out.extend_from_slice(value);
    end(out);
}

fn words(out: &mut Vec<u8>, kind: u8, parts: &[&[u8]]) {
    start(out, kind);
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(p);
    }
    end(out);
}

impl<B: AsRef<[u8]>> Connection<B> {
    /// Appends the `c=` value (`IN IP4 224.2.1.1/127/3`).
    pub fn write_value(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.nettype.as_ref());
        out.push(b' ');
        out.extend_from_slice(self.addrtype.as_ref());
        out.push(b' ');
        out.extend_from_slice(self.address.as_ref());
        if self.is_ip6() {
            if let Some(count) = self.count {
                out.push(b'/');
                push_u64(out, u64::from(count));
            }
        } else if let Some(ttl) = self.ttl {
            out.push(b'/');
            push_u64(out, u64::from(ttl));
            if let Some(count) = self.count {
                out.push(b'/');
                push_u64(out, u64::from(count));
            }
        }
    }

    fn write_line(&self, out: &mut Vec<u8>) {
        start(out, b'c');
        self.write_value(out);
        end(out);
    }
}

impl<B: AsRef<[u8]>> Bandwidth<B> {
    fn write_line(&self, out: &mut Vec<u8>) {
        start(out, b'b');
        out.extend_from_slice(self.bwtype.as_ref());
        out.push(b':');
        push_u64(out, self.value);
        end(out);
    }
}

impl<B: AsRef<[u8]>> Attribute<B> {
    /// Appends the full `a=` line including CRLF.
    pub fn write_line(&self, out: &mut Vec<u8>) {
        start(out, b'a');
        out.extend_from_slice(self.name.as_ref());
        if let Some(v) = &self.value {
            out.push(b':');
            out.extend_from_slice(v.as_ref());
        }
        end(out);
    }
}

impl<B: AsRef<[u8]>> Line<B> {
    fn write_line(&self, out: &mut Vec<u8>) {
        raw_line(out, self.kind, self.value.as_ref());
    }
}

impl<B: AsRef<[u8]>> Media<B> {
    /// Appends this media section (`m=` line and its lines), CRLF-terminated.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        start(out, b'm');
        out.extend_from_slice(self.media.as_ref());
        out.push(b' ');
        push_u64(out, u64::from(self.port));
        if let Some(count) = self.port_count {
            out.push(b'/');
            push_u64(out, u64::from(count));
        }
        out.push(b' ');
        out.extend_from_slice(self.proto.as_ref());
        for fmt in &self.formats {
            out.push(b' ');
            out.extend_from_slice(fmt.as_ref());
        }
        end(out);
        if let Some(i) = &self.information {
            raw_line(out, b'i', i.as_ref());
        }
        for c in &self.connections {
            c.write_line(out);
        }
        for b in &self.bandwidths {
            b.write_line(out);
        }
        if let Some(k) = &self.key {
            raw_line(out, b'k', k.as_ref());
        }
        for a in &self.attributes {
            a.write_line(out);
        }
        for l in &self.extra {
            l.write_line(out);
        }
    }
}

impl<B: AsRef<[u8]>> SessionDescription<B> {
    /// Appends the canonical form: RFC 8866 line order, CRLF line ends,
    /// single spaces between fields; unknown/surplus lines follow the known
    /// lines of their section.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        if let Some(v) = self.version {
            start(out, b'v');
            push_u64(out, u64::from(v));
            end(out);
        }
        if let Some(o) = &self.origin {
            words(
                out,
                b'o',
                &[
                    o.username.as_ref(),
                    o.session_id.as_ref(),
                    o.session_version.as_ref(),
                    o.nettype.as_ref(),
                    o.addrtype.as_ref(),
                    o.unicast_address.as_ref(),
                ],
            );
        }
        if let Some(s) = &self.session_name {
            raw_line(out, b's', s.as_ref());
        }
        if let Some(i) = &self.information {
            raw_line(out, b'i', i.as_ref());
        }
        if let Some(u) = &self.uri {
            raw_line(out, b'u', u.as_ref());
        }
        for e in &self.emails {
            raw_line(out, b'e', e.as_ref());
        }
        for p in &self.phones {
            raw_line(out, b'p', p.as_ref());
        }
        if let Some(c) = &self.connection {
            c.write_line(out);
        }
        for b in &self.bandwidths {
            b.write_line(out);
        }
        for t in &self.timings {
            start(out, b't');
            push_u64(out, t.start);
            out.push(b' ');
            push_u64(out, t.stop);
            end(out);
            for r in &t.repeats {
                raw_line(out, b'r', r.as_ref());
            }
        }
        if let Some(z) = &self.time_zones {
            raw_line(out, b'z', z.as_ref());
        }
        if let Some(k) = &self.key {
            raw_line(out, b'k', k.as_ref());
        }
        for a in &self.attributes {
            a.write_line(out);
        }
        for l in &self.extra {
            l.write_line(out);
        }
        for m in &self.media {
            m.write_to(out);
        }
    }

    /// The canonical form as a new buffer.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        self.write_to(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        for n in [0u64, 7, 10, 65535, u64::MAX] {
            let mut out = Vec::new();
            push_u64(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
    }

    #[test]
    fn connection_suffixes() {
        let mut c = Connection {
            nettype: &b"IN"[..],
            addrtype: &b"IP4"[..],
            address: &b"224.2.1.1"[..],
            ttl: Some(127),
            count: Some(3),
        };
        let mut out = Vec::new();
        c.write_value(&mut out);
        assert_eq!(out, b"IN IP4 224.2.1.1/127/3");
        c.addrtype = b"IP6";
        c.address = b"ff15::101";
        c.ttl = None;
        out.clear();
        c.write_value(&mut out);
        assert_eq!(out, b"IN IP6 ff15::101/3");
    }
}
