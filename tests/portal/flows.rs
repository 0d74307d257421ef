//! Portal pages of `portal/src/flows.rs` over HTTP: data flows, registering datasets, load
//! history, and schema change requests with the admin's decision.

use std::sync::Arc;

use arrow::array::{Date32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use serde_json::Value;

use crate::common;
use crate::support::{Browser, Page, demo_password, unescape};

/// The admin's REST token of a demo server.
fn admin_token(dir: &std::path::Path) -> String {
    common::credentials(dir)["admin"]["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// `GET /api/v1/datasets/{name}` as the admin: (status, body).
async fn dataset(base: &str, token: &str, name: &str) -> (u16, Value) {
    let (status, _, body) =
        common::get_auth(&format!("{base}/api/v1/datasets/{name}"), token).await;
    (status, body)
}

fn attribute_names(def: &Value) -> Vec<String> {
    def["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .collect()
}

/// The whole tag that carries `id="ID"`.
fn tag_with_id<'a>(html: &'a str, id: &str) -> Option<&'a str> {
    let at = html.find(&format!("id=\"{id}\""))?;
    let start = html[..at].rfind('<')?;
    let end = at + html[at..].find('>')?;
    Some(&html[start..=end])
}

fn attr_value(tag: &str) -> String {
    let Some(v) = tag.find("value=\"") else {
        return String::new();
    };
    let rest = &tag[v + 7..];
    unescape(&rest[..rest.find('"').unwrap()])
}

/// One row of the attribute table as a browser would send it.
#[derive(Debug, Clone, Default)]
struct FormRow {
    name: String,
    data_type: String,
    description: String,
    subject: String,
    required: bool,
    key: bool,
    personal: bool,
}

/// The attribute rows of a definition form page, as filled in.
fn form_rows(page: &Page) -> Vec<FormRow> {
    let html = &page.html;
    let mut rows = Vec::new();
    for i in 0.. {
        let Some(name) = tag_with_id(html, &format!("attr-name-{i}")) else {
            break;
        };
        let select_at = html.find(&format!("id=\"attr-type-{i}\"")).unwrap();
        let select = &html[select_at..select_at + html[select_at..].find("</select>").unwrap()];
        let selected = select
            .split("<option")
            .find(|o| o.contains(" selected"))
            .map(attr_value)
            .unwrap_or_default();
        let checked = |what: &str| {
            tag_with_id(html, &format!("attr-{what}-{i}"))
                .unwrap()
                .contains(" checked")
        };
        rows.push(FormRow {
            name: attr_value(name),
            data_type: selected,
            description: attr_value(tag_with_id(html, &format!("attr-description-{i}")).unwrap()),
            subject: attr_value(tag_with_id(html, &format!("attr-subject-{i}")).unwrap()),
            required: checked("required"),
            key: checked("key"),
            personal: checked("personal"),
        });
    }
    rows
}

/// The form fields of `rows` (checkbox values are row indexes).
fn row_fields(rows: &[FormRow]) -> Vec<(String, String)> {
    let mut f = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        f.push(("attr_name".to_owned(), r.name.clone()));
        f.push(("attr_type".to_owned(), r.data_type.clone()));
        f.push(("attr_description".to_owned(), r.description.clone()));
        f.push(("attr_subject".to_owned(), r.subject.clone()));
        if r.required {
            f.push(("attr_required".to_owned(), i.to_string()));
        }
        if r.key {
            f.push(("key".to_owned(), i.to_string()));
        }
        if r.personal {
            f.push(("attr_personal".to_owned(), i.to_string()));
        }
    }
    f
}

fn row(name: &str, ty: &str, description: &str) -> FormRow {
    FormRow {
        name: name.into(),
        data_type: ty.into(),
        description: description.into(),
        ..FormRow::default()
    }
}

async fn submit(b: &mut Browser, path: &str, fields: &[(String, String)]) -> Page {
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    b.submit(path, &pairs).await
}

/// A Parquet file of the `pmlp_documents` test dataset.
fn documents_parquet() -> Vec<u8> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("document_no", DataType::Utf8, false),
        Field::new("personal_code", DataType::Utf8, false),
        Field::new("issued_on", DataType::Date32, true),
    ]));
    let batch = RecordBatch::try_new(
        std::sync::Arc::clone(&schema),
        vec![
            Arc::new(StringArray::from(vec!["LV0000001", "LV0000002"])),
            Arc::new(StringArray::from(vec!["010190-12345", "020290-12345"])),
            Arc::new(Date32Array::from(vec![Some(19_000), None])),
        ],
    )
    .unwrap();
    let mut body = Vec::new();
    let mut w = ArrowWriter::try_new(&mut body, schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    body
}

async fn upload(base: &str, token: &str, dataset: &str, body: Vec<u8>) -> Value {
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1/datasets/{dataset}/loads?wait=true"))
        .bearer_auth(token)
        .header("content-type", "application/vnd.apache.parquet")
        .body(body)
        .send()
        .await
        .unwrap();
    r.json().await.unwrap()
}

#[tokio::test]
async fn owners_register_datasets_and_see_their_loads() {
    let (dir, server) = crate::demo_server();
    let base = server.base.clone();
    let admin = admin_token(dir.path());
    let mut b = Browser::new(&base);
    b.sign_in("pmlp.owner", &demo_password("pmlp.owner")).await;

    // The owner's flows: PMLP's `persons`, how to feed it, and the way to register more.
    let flows = b.open("/flows").await;
    assert_eq!(flows.status, 200, "{}", flows.html);
    assert!(
        flows.has("id=\"flows\"") && flows.has("href=\"/flows/persons\""),
        "{}",
        flows.html
    );
    assert!(flows.has("dagr load persons FILE"));
    assert!(flows.has("POST /api/v1/datasets/persons/loads"));
    assert!(
        !flows.has("href=\"/flows/companies\""),
        "only the owner's own datasets"
    );
    assert!(flows.has("href=\"/flows/new\""));

    // A form the service refuses (an attribute named twice) keeps every row and registers
    // nothing.
    let form = b.open("/flows/new").await;
    assert!(
        form.has("id=\"dataset-form\"") && form.has("id=\"attr-name-7\""),
        "8 empty rows"
    );
    assert!(
        b.open("/flows/new?rows=20")
            .await
            .has("id=\"attr-name-19\"")
    );
    let mut rows = vec![
        FormRow {
            required: true,
            key: true,
            ..row("document_no", "Utf8", "Document number")
        },
        row("colour", "Utf8", "Colour of the cover"),
        row("colour", "Int64", "Another colour"),
        FormRow::default(),
    ];
    rows[3].data_type = "Utf8".into();
    let mut fields = vec![
        ("name".to_owned(), "pmlp_documents".to_owned()),
        ("description".to_owned(), "Identity documents".to_owned()),
        ("sla_days".to_owned(), "5".to_owned()),
    ];
    fields.extend(row_fields(&rows));
    let refused = submit(&mut b, "/flows/new", &fields).await;
    assert_eq!(refused.status, 422, "{}", refused.html);
    assert!(
        refused.has("id=\"error\"") && refused.has("`colour` is defined twice"),
        "{}",
        refused.html
    );
    let kept = form_rows(&refused);
    assert_eq!(kept[0].name, "document_no");
    assert!(kept[0].key && kept[0].required);
    assert_eq!(
        (kept[1].name.as_str(), kept[2].name.as_str()),
        ("colour", "colour")
    );
    assert_eq!(kept[2].data_type, "Int64");
    assert_eq!(kept[2].description, "Another colour");
    assert!(
        tag_with_id(&refused.html, "attr-name-2")
            .unwrap()
            .contains("aria-invalid=\"true\"")
    );
    assert!(
        !tag_with_id(&refused.html, "attr-name-0")
            .unwrap()
            .contains("aria-invalid")
    );
    assert!(refused.has("value=\"pmlp_documents\"") && refused.has("Identity documents"));
    assert_eq!(dataset(&base, &admin, "pmlp_documents").await.0, 404);

    // No key: refused too, nothing registered.
    let mut no_key = rows.clone();
    no_key[0].key = false;
    no_key[2] = FormRow::default();
    no_key[2].data_type = "Utf8".into();
    let mut fields = vec![("name".to_owned(), "pmlp_documents".to_owned())];
    fields.extend(row_fields(&no_key));
    let refused = submit(&mut b, "/flows/new", &fields).await;
    assert_eq!(refused.status, 422);
    assert!(refused.has("primary key is empty"), "{}", refused.html);
    assert!(refused.has("id=\"key-error\""));
    assert_eq!(form_rows(&refused)[1].name, "colour");
    assert_eq!(dataset(&base, &admin, "pmlp_documents").await.0, 404);

    // A good form registers the dataset, as the REST API shows.
    let good = vec![
        FormRow {
            required: true,
            key: true,
            ..row("document_no", "Utf8", "Document number")
        },
        FormRow {
            required: true,
            personal: true,
            subject: "personal_code".into(),
            ..row("personal_code", "Utf8", "Holder's personal code")
        },
        row("issued_on", "Date32", "Date of issue"),
        FormRow {
            data_type: "Utf8".into(),
            ..FormRow::default()
        },
    ];
    let mut fields = vec![
        ("name".to_owned(), "pmlp_documents".to_owned()),
        ("description".to_owned(), "Identity documents".to_owned()),
        ("sla_days".to_owned(), "5".to_owned()),
    ];
    fields.extend(row_fields(&good));
    let done = submit(&mut b, "/flows/new", &fields).await;
    assert_eq!(done.status, 200, "{}", done.html);
    assert!(
        done.has("id=\"notice\"") && done.has("<h1>pmlp_documents</h1>"),
        "{}",
        done.html
    );
    assert!(done.has("id=\"no-loads\""));
    let (status, def) = dataset(&base, &admin, "pmlp_documents").await;
    assert_eq!(status, 200, "{def}");
    assert_eq!(def["owner"], "PMLP");
    assert_eq!(def["sla_days"], 5);
    assert_eq!(def["primary_key"], serde_json::json!(["document_no"]));
    assert_eq!(
        attribute_names(&def),
        ["document_no", "personal_code", "issued_on"]
    );
    assert_eq!(def["attributes"][1]["personal"], true);
    assert_eq!(def["attributes"][2]["type"], "Date32");

    // Loads, committed and refused, are in the history, newest first, with the reasons.
    let committed = upload(&base, &admin, "pmlp_documents", documents_parquet()).await;
    assert_eq!(committed["status"], "committed", "{committed}");
    let refused = upload(
        &base,
        &admin,
        "pmlp_documents",
        b"not parquet at all".to_vec(),
    )
    .await;
    assert_eq!(refused["status"], "refused", "{refused}");
    let history = b.open("/flows/pmlp_documents").await;
    assert_eq!(history.status, 200);
    let loads = &history.html[history.html.find("id=\"loads\"").expect("the loads table")..];
    let (first_refused, first_committed) = (
        loads.find("tag refused").expect("a refused load"),
        loads.find("tag committed").expect("a committed load"),
    );
    assert!(first_refused < first_committed, "newest first");
    let reason = refused["reasons"][0].as_str().unwrap();
    assert!(
        history.has(reason),
        "the refusal's reason is shown: {reason}"
    );
    assert!(history.has("href=\"/datasets/pmlp_documents/changes/new\""));
    let flows = b.open("/flows").await;
    assert!(flows.has("href=\"/flows/pmlp_documents\"") && flows.has("tag refused"));

    // A consumer cannot register: refused before any row of the form is read (its type
    // strings go through a recursive parser), with a readable reason.
    let mut c = Browser::new(&base);
    c.sign_in("banka.consumer", &demo_password("banka.consumer"))
        .await;
    c.open("/flows/new").await;
    let mut fields = vec![("name".to_owned(), "banka_documents".to_owned())];
    fields.extend(row_fields(&good));
    let refused = submit(&mut c, "/flows/new", &fields).await;
    assert_eq!(refused.status, 403, "{}", refused.html);
    assert!(
        refused.has("only an admin or an owner of the organisation"),
        "{}",
        refused.html
    );
    // Even with a type nested far beyond any limit, the answer is the same refusal.
    let mut deep = fields.clone();
    for (k, v) in deep.iter_mut() {
        if k.contains("type") {
            *v = format!("{}Int32{}", "List(".repeat(2_000), ")".repeat(2_000));
        }
    }
    let refused = submit(&mut c, "/flows/new", &deep).await;
    assert_eq!(refused.status, 403);
    assert_eq!(dataset(&base, &admin, "banka_documents").await.0, 404);
    // Nor see PMLP's loads.
    assert_eq!(c.open("/flows/pmlp_documents").await.status, 403);
}

#[tokio::test]
async fn schema_changes_are_filed_by_owners_and_decided_by_the_admin() {
    let (dir, server) = crate::demo_server();
    let base = server.base.clone();
    let admin_rest = admin_token(dir.path());
    let mut owner = Browser::new(&base);
    owner
        .sign_in("pmlp.owner", &demo_password("pmlp.owner"))
        .await;

    // The form holds the current definition and room for more.
    let form = owner.open("/datasets/persons/changes/new").await;
    assert_eq!(form.status, 200, "{}", form.html);
    assert!(form.has("id=\"change-form\"") && form.has("id=\"change-reason\""));
    let mut rows = form_rows(&form);
    assert_eq!(rows[0].name, "personal_code");
    assert!(rows[0].key && rows[0].required && rows[0].personal);
    let blank = rows.iter().position(|r| r.name.is_empty()).unwrap();

    // Adding an attribute breaks nothing: it applies at once.
    rows[blank] = FormRow {
        personal: true,
        subject: "personal_code".into(),
        ..row("nickname", "Utf8", "Preferred name")
    };
    let mut fields = vec![("description".to_owned(), "Population register".to_owned())];
    fields.extend(row_fields(&rows));
    fields.push(("reason".to_owned(), "Citizens asked for it".to_owned()));
    let applied = submit(&mut owner, "/datasets/persons/changes/new", &fields).await;
    assert_eq!(applied.status, 200, "{}", applied.html);
    assert!(
        applied.has("id=\"notice\"") && applied.has("id=\"diff-added\""),
        "{}",
        applied.html
    );
    assert!(
        applied.has("Citizens asked for it"),
        "the reason is in the history"
    );
    assert!(!applied.has("id=\"accept\""));
    let (_, def) = dataset(&base, &admin_rest, "persons").await;
    assert!(
        attribute_names(&def).contains(&"nickname".to_owned()),
        "{def}"
    );

    // Removing `citizenship`, which LM's agreement grants, waits for the admin.
    let form = owner.open("/datasets/persons/changes/new").await;
    let mut rows = form_rows(&form);
    let at = rows.iter().position(|r| r.name == "citizenship").unwrap();
    rows[at] = FormRow {
        data_type: "Utf8".into(),
        ..FormRow::default()
    };
    let blank = rows.iter().rposition(|r| r.name.is_empty()).unwrap();
    assert!(blank > at, "an empty row after the attributes");
    rows[blank] = FormRow {
        personal: true,
        subject: "personal_code".into(),
        ..row("marital_status", "Utf8", "Marital status")
    };
    let mut fields = vec![("description".to_owned(), "Population register".to_owned())];
    fields.extend(row_fields(&rows));
    fields.push((
        "reason".to_owned(),
        "Citizenship moves to its own register".to_owned(),
    ));
    let pending = submit(&mut owner, "/datasets/persons/changes/new", &fields).await;
    assert_eq!(pending.status, 200, "{}", pending.html);
    let path = change_path(&pending);
    assert!(pending.has("id=\"diff-removed\"") && pending.has("citizenship"));
    assert!(
        pending.has("id=\"affected\"") && pending.has(">LM<"),
        "{}",
        pending.html
    );
    assert!(pending.has("tag pending"));
    // Only an admin decides: the owner is refused readably.
    let refused = owner.submit(&format!("{path}/accept"), &[]).await;
    assert_eq!(refused.status, 403, "{}", refused.html);
    assert!(refused.has("id=\"error\"") && refused.has("only an admin may do this"));

    // The admin sees it first in the list, and accepts it.
    let mut admin = Browser::new(&base);
    admin.sign_in("admin", &demo_password("admin")).await;
    let list = admin.open("/changes").await;
    assert_eq!(list.status, 200);
    let table = &list.html[list.html.find("id=\"changes\"").expect("the changes table")..];
    let first = table.find("href=\"/changes/").unwrap();
    assert!(
        table[first..].starts_with(&format!("href=\"{path}\"")),
        "pending first: {table}"
    );
    let page = admin.open(&path).await;
    assert!(
        page.has("id=\"accept\"") && page.has("data-confirm=") && page.has("id=\"reject-reason\"")
    );
    assert!(page.has("Citizenship moves to its own register"));
    let accepted = admin.submit(&format!("{path}/accept"), &[]).await;
    assert_eq!(accepted.status, 200, "{}", accepted.html);
    assert!(
        accepted.has("id=\"notice\"") && accepted.has("tag accepted"),
        "{}",
        accepted.html
    );
    assert!(!accepted.has("id=\"accept\""));
    let (_, def) = dataset(&base, &admin_rest, "persons").await;
    let names = attribute_names(&def);
    assert!(names.contains(&"marital_status".to_owned()), "{def}");
    assert!(!names.contains(&"citizenship".to_owned()), "{def}");
    // Accepting twice is the service's conflict, shown readably.
    let again = admin
        .post_raw(
            &format!("{path}/accept"),
            &[("csrf", &admin.csrf.clone().unwrap())],
        )
        .await;
    assert_eq!(again.status, 409, "{}", again.html);
    assert!(again.has("only a pending one can be accepted"));

    // Removing `sex` (granted to LM) and the admin rejects it: a reason is required.
    let form = owner.open("/datasets/persons/changes/new").await;
    let mut rows = form_rows(&form);
    let at = rows.iter().position(|r| r.name == "sex").unwrap();
    rows[at] = FormRow {
        data_type: "Utf8".into(),
        ..FormRow::default()
    };
    let mut fields = vec![("description".to_owned(), "Population register".to_owned())];
    fields.extend(row_fields(&rows));
    let pending = submit(&mut owner, "/datasets/persons/changes/new", &fields).await;
    let path = change_path(&pending);
    admin.open(&path).await;
    let refused = admin
        .submit(&format!("{path}/reject"), &[("reason", "  ")])
        .await;
    assert_eq!(refused.status, 422, "{}", refused.html);
    assert!(
        tag_with_id(&refused.html, "reject-reason")
            .unwrap()
            .contains("aria-invalid=\"true\"")
    );
    let rejected = admin
        .submit(
            &format!("{path}/reject"),
            &[("reason", "LM still needs it")],
        )
        .await;
    assert_eq!(rejected.status, 200);
    assert!(rejected.has("tag rejected") && rejected.has("LM still needs it"));
    let (_, def) = dataset(&base, &admin_rest, "persons").await;
    assert!(attribute_names(&def).contains(&"sex".to_owned()));

    // A consumer sees no schema changes.
    let mut consumer = Browser::new(&base);
    consumer
        .sign_in("banka.consumer", &demo_password("banka.consumer"))
        .await;
    assert_eq!(consumer.open("/changes").await.status, 403);
}

/// The path of the change request page `page` is (from its decision or history links).
fn change_path(page: &Page) -> String {
    let at = page.html.find("<h1>").unwrap();
    let h1 = &page.html[at + 4..at + page.html[at..].find("</h1>").unwrap()];
    let digits = h1.chars().rev().take_while(char::is_ascii_digit).count();
    let id = &h1[h1.len() - digits..];
    assert!(!id.is_empty(), "a change request page: {h1}");
    format!("/changes/{id}")
}

/// The `<select>` of row `i` of a definition form page, up to its end.
fn type_select(page: &Page, i: usize) -> &str {
    let html = &page.html;
    let at = html
        .find(&format!("id=\"attr-type-{i}\""))
        .expect("the row's type");
    &html[at..at + html[at..].find("</select>").unwrap()]
}

/// `n` attribute rows, each with its own name and a type no engine knows: a form as
/// only a script sends it.
fn bogus_rows(n: usize) -> Vec<(String, String)> {
    let mut f = Vec::new();
    for i in 0..n {
        f.push(("attr_name".to_owned(), format!("a{i}")));
        f.push(("attr_type".to_owned(), format!("t{i}")));
    }
    f
}

/// The error summary of a refused page (empty when there is none).
fn error_summary(page: &Page) -> String {
    let Some(at) = page.html.find("id=\"error\"") else {
        return String::new();
    };
    let rest = &page.html[at..];
    unescape(&rest[..rest.find("</div>").unwrap()])
}

#[tokio::test]
async fn definition_forms_refuse_too_many_rows_and_show_unknown_types_in_their_row() {
    let (dir, server) = crate::demo_server();
    let base = server.base.clone();
    let admin = admin_token(dir.path());
    let mut b = Browser::new(&base);
    b.sign_in("pmlp.owner", &demo_password("pmlp.owner")).await;

    // `?rows=` asks for at most 200 empty rows.
    let many = b.open("/flows/new?rows=100000").await;
    assert_eq!(many.status, 200);
    assert!(many.has("id=\"attr-name-199\"") && !many.has("id=\"attr-name-200\""));

    // 5 000 rows, each with a type of its own: refused at once, as a small page that keeps
    // the other fields but not the rows, and nothing is registered.
    b.open("/flows/new").await;
    let mut fields = vec![
        ("name".to_owned(), "pmlp_flood".to_owned()),
        ("description".to_owned(), "Far too wide".to_owned()),
    ];
    fields.extend(bogus_rows(5_000));
    let refused = submit(&mut b, "/flows/new", &fields).await;
    assert_eq!(
        refused.status,
        422,
        "{}",
        &refused.html[..2000.min(refused.html.len())]
    );
    assert!(
        refused.html.len() < 200_000,
        "a refusal of {} bytes",
        refused.html.len()
    );
    let summary = error_summary(&refused);
    assert!(
        summary.contains("5000") && summary.contains("1224"),
        "{summary}"
    );
    assert!(refused.has("value=\"pmlp_flood\"") && refused.has("Far too wide"));
    assert!(refused.has("id=\"attr-name-7\"") && !refused.has("id=\"attr-name-8\""));
    assert!(!refused.has("t4999") && !refused.has("value=\"a0\""));
    assert_eq!(dataset(&base, &admin, "pmlp_flood").await.0, 404);

    // The same for a schema change: the current definition is shown again, unchanged.
    let (_, before) = dataset(&base, &admin, "persons").await;
    b.open("/datasets/persons/changes/new").await;
    let mut fields = vec![("reason".to_owned(), "Flood".to_owned())];
    fields.extend(bogus_rows(5_000));
    let refused = submit(&mut b, "/datasets/persons/changes/new", &fields).await;
    assert_eq!(refused.status, 422);
    assert!(
        refused.html.len() < 200_000,
        "a refusal of {} bytes",
        refused.html.len()
    );
    assert!(error_summary(&refused).contains("5000"));
    assert_eq!(form_rows(&refused)[0].name, "personal_code");
    assert!(!refused.has("t4999") && refused.has("Flood"));
    let (_, after) = dataset(&base, &admin, "persons").await;
    assert_eq!(attribute_names(&before), attribute_names(&after));

    // A citizen's session gets the same small refusal.
    let creds = common::credentials(dir.path());
    let citizen = creds["subjects"][0]["token"].as_str().unwrap().to_owned();
    let mut c = Browser::new(&base);
    c.sign_in_citizen(&citizen).await;
    for path in ["/flows/new", "/datasets/persons/changes/new"] {
        let mut fields = vec![("name".to_owned(), "citizen_flood".to_owned())];
        fields.extend(bogus_rows(5_000));
        let refused = submit(&mut c, path, &fields).await;
        assert!(
            matches!(refused.status, 403 | 404 | 422),
            "{path}: {}",
            refused.status
        );
        assert!(
            refused.html.len() < 200_000,
            "{path}: {} bytes",
            refused.html.len()
        );
    }
    assert_eq!(dataset(&base, &admin, "citizen_flood").await.0, 404);

    // As many rows as the largest form the portal serves are still taken.
    b.open("/flows/new").await;
    let mut rows = vec![FormRow {
        required: true,
        key: true,
        ..row("document_no", "Utf8", "Document number")
    }];
    rows.resize(
        1224,
        FormRow {
            data_type: "Utf8".into(),
            ..FormRow::default()
        },
    );
    let mut fields = vec![("name".to_owned(), "pmlp_roomy".to_owned())];
    fields.extend(row_fields(&rows));
    let done = submit(&mut b, "/flows/new", &fields).await;
    assert_eq!(done.status, 200, "{}", error_summary(&done));
    assert_eq!(dataset(&base, &admin, "pmlp_roomy").await.0, 200);

    // One unknown type: its row alone offers it, selected, and the refusal names it.
    b.open("/flows/new").await;
    let rows = vec![
        FormRow {
            required: true,
            key: true,
            ..row("document_no", "Utf8", "Document number")
        },
        row("colour", "Text", "Colour of the cover"),
        row("pages", "Int64", "Number of pages"),
    ];
    let mut fields = vec![("name".to_owned(), "pmlp_documents".to_owned())];
    fields.extend(row_fields(&rows));
    let refused = submit(&mut b, "/flows/new", &fields).await;
    assert_eq!(refused.status, 422, "{}", refused.html);
    let summary = error_summary(&refused);
    assert!(
        summary.contains("`Text`") && summary.contains('2'),
        "{summary}"
    );
    let kept = form_rows(&refused);
    assert_eq!(kept[1].name, "colour");
    assert_eq!(kept[1].data_type, "Text");
    assert_eq!(kept[2].data_type, "Int64");
    assert!(type_select(&refused, 1).contains("aria-invalid=\"true\""));
    for i in [0, 2, 3] {
        let select = type_select(&refused, i);
        assert!(!select.contains("\"Text\""), "row {i}: {select}");
        assert_eq!(select.matches("<option").count(), 9, "row {i}");
    }
    assert_eq!(type_select(&refused, 1).matches("\"Text\"").count(), 1);
    assert_eq!(dataset(&base, &admin, "pmlp_documents").await.0, 404);
}
