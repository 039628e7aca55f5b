//! The in-memory store through the public API.

use std::sync::Arc;

use parking_lot::Mutex;
use sipox_mod_usrloc::{Contact, Params, Usrloc};

type Events = Arc<Mutex<Vec<(String, Vec<(String, String)>)>>>;

pub(crate) fn capture(ul: &Usrloc) -> Events {
    let evs: Events = Arc::default();
    let e = Arc::clone(&evs);
    ul.set_event_sink(Arc::new(move |name, params| {
        e.lock().push((name.to_owned(), params))
    }));
    evs
}

pub(crate) fn contact(uri: &str, expires: i64, callid: &str, cseq: u32) -> Contact {
    let mut c = Contact::new(uri);
    c.expires = expires;
    c.callid = callid.into();
    c.cseq = cseq;
    c
}

const NOW: i64 = 1_700_000_000;

#[test]
fn insert_find_update_delete() {
    let ul = Usrloc::new(Params::default()).unwrap();
    let loc = ul.register_domain("location").unwrap();
    assert_eq!(ul.register_domain("location").unwrap(), loc);
    assert_eq!(ul.contacts(loc, "alice", NOW).unwrap(), None);

    let id = ul
        .with_record(loc, "alice", NOW, |r| {
            assert!(!r.existed());
            assert_eq!(r.find("sip:alice@1.2.3.4"), None);
            let i = r.insert(contact("sip:alice@1.2.3.4", NOW + 3600, "c1", 1));
            r.get(i).unwrap().contact_id
        })
        .unwrap();
    assert_ne!(id, 0);
    let cs = ul.contacts(loc, "alice", NOW).unwrap().unwrap();
    assert_eq!(cs.len(), 1);
    assert_eq!(cs[0].contact_id, id);
    assert_eq!(cs[0].last_modified, NOW);

    ul.with_record(loc, "alice", NOW + 10, |r| {
        assert!(r.existed());
        let i = r.find("sip:alice@1.2.3.4").unwrap();
        assert!(r.update(i, |c| {
            c.expires = NOW + 7200;
            c.cseq = 2;
            c.contact_id = 42; // ignored: the id is usrloc's
        }));
        r.insert(contact("sip:alice@5.6.7.8", 0, "c2", 1));
    })
    .unwrap();
    let cs = ul.contacts(loc, "alice", NOW).unwrap().unwrap();
    assert_eq!(cs.len(), 2);
    assert_eq!(cs[0].contact_id, id);
    assert_eq!(
        (cs[0].cseq, cs[0].expires, cs[0].last_modified),
        (2, NOW + 7200, NOW + 10)
    );
    assert_ne!(cs[1].contact_id, id);
    assert_eq!(ul.registered_users(), 1);
    let st = ul.domain_stats(loc).unwrap();
    assert_eq!((st.users, st.contacts), (1, 2));

    ul.with_record(loc, "alice", NOW, |r| {
        let i = r.find("sip:alice@5.6.7.8").unwrap();
        r.remove(i).unwrap();
    })
    .unwrap();
    assert_eq!(ul.contacts(loc, "alice", NOW).unwrap().unwrap().len(), 1);
    assert!(ul.delete_aor(loc, "alice", NOW).unwrap());
    assert_eq!(ul.contacts(loc, "alice", NOW).unwrap(), None);
    assert!(!ul.delete_aor(loc, "alice", NOW).unwrap());
    assert_eq!(ul.registered_users(), 0);
    assert_eq!(ul.domain_stats(loc).unwrap().contacts, 0);
}

#[test]
fn events_fire_with_opensips_params() {
    let ul = Usrloc::new(Params::default()).unwrap();
    let loc = ul.register_domain("location").unwrap();
    let evs = capture(&ul);
    ul.with_record(loc, "bob", NOW, |r| {
        let mut c = contact("sip:bob@10.0.0.2:5060", NOW + 60, "cid-b", 7);
        c.q = 500;
        c.received = "sip:192.0.2.1:4444".into();
        c.path = "<sip:edge;lr>".into();
        c.user_agent = "UA/1".into();
        c.socket = "udp:127.0.0.1:5060".into();
        c.cflags = 5;
        c.attr = "a=b".into();
        r.insert(c);
    })
    .unwrap();
    let got = evs.lock().clone();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].0, "E_UL_AOR_INSERT");
    assert_eq!(
        got[0].1,
        vec![
            ("domain".to_owned(), "location".to_owned()),
            ("aor".into(), "bob".into())
        ]
    );
    assert_eq!(got[1].0, "E_UL_CONTACT_INSERT");
    let p: Vec<(&str, &str)> = got[1]
        .1
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let exp = (NOW + 60).to_string();
    assert_eq!(
        p,
        vec![
            ("domain", "location"),
            ("aor", "bob"),
            ("uri", "sip:bob@10.0.0.2:5060"),
            ("received", "sip:192.0.2.1:4444"),
            ("path", "<sip:edge;lr>"),
            ("qval", "500"),
            ("user_agent", "UA/1"),
            ("socket", "udp:127.0.0.1:5060"),
            ("bflags", "5"),
            ("expires", exp.as_str()),
            ("callid", "cid-b"),
            ("cseq", "7"),
            ("attr", "a=b"),
            ("latency", "0"),
            ("shtag", ""),
        ]
    );
    evs.lock().clear();
    ul.with_record(loc, "bob", NOW, |r| r.update(0, |c| c.cseq = 8))
        .unwrap();
    {
        let got = evs.lock();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "E_UL_CONTACT_UPDATE");
        assert!(got[0].1.contains(&("cseq".to_owned(), "8".to_owned())));
    }
    evs.lock().clear();
    // expiry: the timer removes the contact at expires <= now, then the AoR
    ul.tick(NOW + 59);
    assert!(evs.lock().is_empty());
    ul.tick(NOW + 60);
    let names: Vec<String> = evs.lock().iter().map(|e| e.0.clone()).collect();
    assert_eq!(names, ["E_UL_CONTACT_DELETE", "E_UL_AOR_DELETE"]);
    assert_eq!(ul.contacts(loc, "bob", NOW).unwrap(), None);
    assert_eq!(ul.domain_stats(loc).unwrap().expires, 1);
    assert_eq!(ul.registered_users(), 0);
}
