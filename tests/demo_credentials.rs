//! End to end: the demo governance a fresh `dagr serve` seeds, the credentials file it
//! writes, and what each demo token may do with it — across a restart.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;

use common::{Server, credentials, get_auth};
use dagr_engine::arrow::array::AsArray;
use dagr_engine::demo::{DEFAULT_SEED, DemoConfig, generate};
use serde_json::Value;

const DEMO_ROWS: usize = 1000;
const OWNERS: [&str; 3] = ["PMLP", "UR", "VZD"];
const CONSUMERS: [&str; 5] = ["APDR", "BANKA", "LIAA", "LM", "RIGA"];
const AGREEMENT_FIELDS: [&str; 9] = [
    "id",
    "dataset",
    "attributes",
    "row_scope",
    "status",
    "consumer_organisation",
    "systems",
    "valid_from",
    "valid_to",
];

fn array(v: &Value) -> &Vec<Value> {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}"))
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

fn strings(v: &Value) -> BTreeSet<String> {
    array(v).iter().map(|s| text(s).to_owned()).collect()
}

/// The first system of `org` in the credentials.
fn system_of<'a>(creds: &'a Value, org: &str) -> &'a Value {
    array(&creds["systems"])
        .iter()
        .find(|s| s["organisation"] == org)
        .unwrap_or_else(|| panic!("no system of {org} in the credentials"))
}

/// Rīga residents among the first `DEMO_ROWS` demo persons: what the server holds.
fn riga_residents() -> usize {
    let demo = generate(&DemoConfig {
        persons: DEMO_ROWS,
        seed: DEFAULT_SEED,
    })
    .unwrap();
    let persons = demo
        .iter()
        .find(|d| d.definition.name == "persons")
        .unwrap();
    persons
        .batches
        .iter()
        .map(|b| {
            let m = b.column_by_name("municipality").unwrap().as_string::<i32>();
            m.iter().filter(|v| *v == Some("Rīga")).count()
        })
        .sum()
}

fn check_shape(creds: &Value) {
    assert!(!text(&creds["admin"]["token"]).is_empty());

    let systems = array(&creds["systems"]);
    for s in systems {
        for key in ["organisation", "system", "token"] {
            assert!(!text(&s[key]).is_empty(), "{key} of {s}");
        }
        assert!(s["role"] == "consumer" || s["role"] == "provider", "{s}");
    }
    let with_role = |role: &str| -> BTreeSet<String> {
        systems
            .iter()
            .filter(|s| s["role"] == role)
            .map(|s| text(&s["organisation"]).to_owned())
            .collect()
    };
    assert_eq!(with_role("provider"), OWNERS.map(String::from).into());
    assert_eq!(with_role("consumer"), CONSUMERS.map(String::from).into());
    // One provider system per register owner.
    assert_eq!(
        systems.iter().filter(|s| s["role"] == "provider").count(),
        OWNERS.len()
    );

    let users = array(&creds["users"]);
    let mut by_role: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for u in users {
        assert!(!text(&u["login"]).is_empty(), "{u}");
        assert!(text(&u["password"]).chars().count() >= 10, "{u}");
        let org = match &u["organisation"] {
            Value::Null => "-".to_owned(),
            o => text(o).to_owned(),
        };
        by_role
            .entry(text(&u["role"]).to_owned())
            .or_default()
            .insert(org);
    }
    assert_eq!(by_role["admin"], BTreeSet::from(["-".to_owned()]));
    assert_eq!(by_role["owner"], OWNERS.map(String::from).into());
    assert_eq!(by_role["consumer"], CONSUMERS.map(String::from).into());

    let subjects = array(&creds["subjects"]);
    assert_eq!(subjects.len(), 3);
    let codes: BTreeSet<&str> = subjects.iter().map(|s| text(&s["personal_code"])).collect();
    assert_eq!(codes.len(), 3, "three different citizens");
    for s in subjects {
        assert!(!text(&s["token"]).is_empty());
    }
}

async fn check_tokens(base: &str, creds: &Value) {
    let (status, _, me) =
        get_auth(&format!("{base}/api/v1/me"), text(&creds["admin"]["token"])).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["role"], "admin");

    for s in array(&creds["systems"]) {
        let (status, _, me) = get_auth(&format!("{base}/api/v1/me"), text(&s["token"])).await;
        assert_eq!(status, 200, "{s}: {me}");
        let role = if s["role"] == "provider" {
            "owner"
        } else {
            "consumer"
        };
        assert_eq!(me["role"], role, "{s}: {me}");
        assert_eq!(me["organisation"], s["organisation"], "{me}");
    }
    for s in array(&creds["subjects"]) {
        let (status, _, me) = get_auth(&format!("{base}/api/v1/me"), text(&s["token"])).await;
        assert_eq!(status, 200, "{me}");
        assert_eq!(me["role"], "subject");
        assert_eq!(me["subject"], s["personal_code"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_credentials_grant_what_the_agreements_say_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start(&data, DEMO_ROWS, &[]);
    let base = server.base.clone();

    let path = data.join("demo-credentials.json");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    let bytes = std::fs::read(&path).unwrap();
    let creds = credentials(&data);
    check_shape(&creds);
    check_tokens(&base, &creds).await;
    let admin = text(&creds["admin"]["token"]).to_owned();

    // Every consumer lists its own organisation's agreements only, with the full fields.
    let mut all_listed = 0;
    for org in CONSUMERS {
        let token = text(&system_of(&creds, org)["token"]);
        let (status, _, list) = get_auth(&format!("{base}/api/v1/agreements"), token).await;
        assert_eq!(status, 200, "{list}");
        let list = array(&list);
        assert!(!list.is_empty(), "{org} has agreements");
        all_listed += list.len();
        for a in list {
            for field in AGREEMENT_FIELDS {
                assert!(a.get(field).is_some(), "{field} missing in {a}");
            }
            assert_eq!(a["consumer_organisation"], org, "{a}");
            assert_eq!(a["status"], "active", "{a}");
        }
    }
    let (status, _, every) = get_auth(&format!("{base}/api/v1/agreements"), &admin).await;
    assert_eq!(status, 200);
    assert_eq!(array(&every).len(), all_listed, "the admin sees them all");

    // At least one approval narrowed its request.
    let (status, _, requests) = get_auth(&format!("{base}/api/v1/requests"), &admin).await;
    assert_eq!(status, 200, "{requests}");
    let requested: BTreeMap<i64, usize> = array(&requests)
        .iter()
        .map(|r| (r["id"].as_i64().unwrap(), array(&r["attributes"]).len()))
        .collect();
    assert!(
        array(&every)
            .iter()
            .any(|a| array(&a["attributes"]).len() < requested[&a["request_id"].as_i64().unwrap()]),
        "no approval narrowed its request: {every}"
    );

    // The municipality reads only its residents, only the granted attributes.
    let (_, _, riga_agreements) = get_auth(
        &format!("{base}/api/v1/agreements"),
        text(&system_of(&creds, "RIGA")["token"]),
    )
    .await;
    let scoped = array(&riga_agreements)
        .iter()
        .find(|a| a["dataset"] == "persons")
        .expect("RIGA has an agreement on persons");
    assert_eq!(scoped["row_scope"], "municipality = 'Rīga'");
    let granted = strings(&scoped["attributes"]);
    assert!(granted.contains("municipality"));
    let readers: Vec<&Value> = array(&creds["systems"])
        .iter()
        .filter(|s| {
            s["organisation"] == "RIGA" && array(&scoped["systems"]).contains(&s["system_id"])
        })
        .collect();
    assert!(!readers.is_empty());
    let expected_rows = riga_residents();
    assert!(expected_rows > 0 && expected_rows < DEMO_ROWS);
    for reader in readers {
        let (status, _, page) = get_auth(
            &format!("{base}/api/v1/datasets/persons/records?limit=1000"),
            text(&reader["token"]),
        )
        .await;
        assert_eq!(status, 200, "{page}");
        let records = array(&page["records"]);
        assert_eq!(records.len(), expected_rows, "exactly the Rīga residents");
        for r in records {
            let keys: BTreeSet<String> = r.as_object().unwrap().keys().cloned().collect();
            assert_eq!(keys, granted, "{r}");
            assert_eq!(r["municipality"], "Rīga", "{r}");
        }
    }

    // The bank has no agreement on companies: refused, naming the dataset.
    let bank = text(&system_of(&creds, "BANKA")["token"]).to_owned();
    let (status, ct, problem) = get_auth(
        &format!("{base}/api/v1/datasets/companies/records?limit=1"),
        &bank,
    )
    .await;
    assert_eq!(status, 403, "{problem}");
    assert_eq!(ct, "application/problem+json");
    assert!(text(&problem["detail"]).contains("companies"), "{problem}");
    // ...but reads persons under its agreement.
    let (status, _, page) = get_auth(
        &format!("{base}/api/v1/datasets/persons/records?limit=5"),
        &bank,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(array(&page["records"]).len(), 5);

    // Requests still waiting for the owners.
    let (status, _, pending) =
        get_auth(&format!("{base}/api/v1/requests?status=pending"), &admin).await;
    assert_eq!(status, 200, "{pending}");
    assert!(array(&pending).len() >= 3, "{pending}");
    assert!(array(&pending).iter().all(|r| r["status"] == "pending"));

    server.terminate();
    assert!(server.logged().contains("demo seeded"));

    // Restart on the same directory: nothing is seeded again; the file and tokens stand.
    let mut server = Server::start(&data, DEMO_ROWS, &[]);
    let base = server.base.clone();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "the credentials file is unchanged"
    );
    check_tokens(&base, &creds).await;
    let (_, _, again) = get_auth(&format!("{base}/api/v1/agreements"), &admin).await;
    assert_eq!(array(&again).len(), all_listed);
    let (_, _, pending_again) =
        get_auth(&format!("{base}/api/v1/requests?status=pending"), &admin).await;
    assert_eq!(array(&pending_again).len(), array(&pending).len());
    let log = server.logged();
    assert!(!log.contains("demo governance seeded"), "{log}");
    server.terminate();
}
