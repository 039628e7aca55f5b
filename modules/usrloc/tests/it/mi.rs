//! The MI commands through the MI engine, and the statistics.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::json;
use sipox_mi::{Mi, MiConfig};
use sipox_mod_usrloc::{Params, Usrloc};
use sipox_stats::Stats;

const NOW: u64 = 1_700_000_000;

fn setup() -> (Arc<Usrloc>, Mi, Arc<Stats>) {
    let ul = Arc::new(Usrloc::new(Params::default()).unwrap());
    let stats = Arc::new(Stats::new());
    ul.attach_stats(Arc::clone(&stats));
    ul.register_domain("location").unwrap();
    let mi = Mi::new(MiConfig {
        stats: Arc::clone(&stats),
        ..MiConfig::default()
    });
    mi.provide(Arc::clone(&ul));
    mi.register_all(&sipox_mod_usrloc::mi::CMDS).unwrap();
    (ul, mi, stats)
}

fn call(mi: &Mi, m: &str, p: serde_json::Value) -> Result<serde_json::Value, (i32, String)> {
    mi.call(m, &p, UNIX_EPOCH + Duration::from_secs(NOW))
        .map_err(|e| (e.code, e.message.to_string()))
}

#[test]
fn add_show_dump_rm() {
    let (ul, mi, stats) = setup();
    let add = json!({"table_name": "location", "aor": "alice", "contact": "sip:alice@1.2.3.4",
        "expires": 3600, "q": "0.5", "unused": 0, "flags": 0, "cflags": 0, "methods": 31});
    assert_eq!(call(&mi, "ul_add", add).unwrap(), json!("OK"));
    let perm = json!(["location", "alice", "sip:alice@5.6.7.8", 0, "1", 0, 0, 0, 7]);
    assert_eq!(call(&mi, "ul_add", perm).unwrap(), json!("OK"));

    let show = call(&mi, "ul_show_contact", json!(["location", "alice"])).unwrap();
    assert_eq!(show["AOR"], json!("alice"));
    let cs = show["Contacts"].as_array().unwrap();
    assert_eq!(cs.len(), 2);
    assert_eq!(cs[0]["Contact"], json!("sip:alice@1.2.3.4"));
    assert_eq!(cs[0]["Expires"], json!(3600));
    assert_eq!(cs[0]["Q"], json!("0.5"));
    assert_eq!(cs[0]["Callid"], json!("dfjrewr12386fd6-343@opensips.mi"));
    assert_eq!(cs[0]["User-agent"], json!("OpenSIPS MI Server"));
    assert_eq!(cs[0]["Cseq"], json!(1));
    assert_eq!(cs[0]["Methods"], json!(31));
    assert_eq!(cs[0]["State"], json!("CS_NEW"));
    assert_eq!(cs[1]["Expires"], json!("permanent"));
    let loc = ul.domain("location").unwrap();
    let id = ul.contacts(loc, "alice", NOW as i64).unwrap().unwrap()[0].contact_id;
    assert_eq!(cs[0]["ContactID"], json!(id.to_string()));

    let dump = call(&mi, "ul_dump", json!({})).unwrap();
    assert_eq!(dump["Domains"][0]["name"], json!("location"));
    assert_eq!(dump["Domains"][0]["hash_size"], json!(512));
    assert_eq!(dump["Domains"][0]["AORs"][0]["AOR"], json!("alice"));
    assert_eq!(
        dump["Domains"][0]["AORs"][0]["Contacts"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let brief = call(&mi, "ul_dump", json!(["brief"])).unwrap();
    assert_eq!(brief["Domains"][0]["AORs"], json!([{"AOR": "alice"}]));

    assert_eq!(stats.value("registered_users"), Some(1));
    assert_eq!(stats.value("location-users"), Some(1));
    assert_eq!(stats.value("location-contacts"), Some(2));

    // errors as OpenSIPS answers them
    assert_eq!(
        call(&mi, "ul_show_contact", json!(["nope", "alice"])).unwrap_err(),
        (404, "Table not found".into())
    );
    assert_eq!(
        call(&mi, "ul_show_contact", json!(["location", "bob"])).unwrap_err(),
        (404, "AOR not found".into())
    );
    assert_eq!(
        call(&mi, "ul_rm_contact", json!(["location", "alice", "sip:x"])).unwrap_err(),
        (404, "Contact not found".into())
    );
    assert_eq!(
        call(
            &mi,
            "ul_rm_contact",
            json!(["location", "alice", "sip:alice@5.6.7.8"])
        )
        .unwrap(),
        json!("OK")
    );
    assert_eq!(stats.value("location-contacts"), Some(1));
    assert_eq!(
        call(&mi, "ul_rm", json!(["location", "alice"])).unwrap(),
        json!("OK")
    );
    assert_eq!(ul.contacts(loc, "alice", NOW as i64).unwrap(), None);
    assert_eq!(stats.value("registered_users"), Some(0));
    assert_eq!(call(&mi, "ul_flush", json!({})).unwrap(), json!("OK"));
    assert_eq!(call(&mi, "ul_sync", json!({})).unwrap_err().0, 400);
    assert_eq!(call(&mi, "ul_cluster_sync", json!({})).unwrap_err().0, 400);
}
