//! Portal pages of `portal/src/systems.rs` over HTTP: systems, and tokens shown once.

use crate::common::get_auth;
use crate::demo_server;
use crate::support::{Browser, Page, demo_password};

/// The id of the system named `name` in the list page's table.
fn system_id(page: &Page, name: &str) -> i64 {
    let at = page
        .html
        .find(&format!(">{name}</a>"))
        .unwrap_or_else(|| panic!("system `{name}` in the list:\n{}", page.html));
    let row = page.html[..at].rfind("id=\"system-").unwrap() + "id=\"system-".len();
    let digits: String = page.html[row..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap()
}

/// The secret shown on the new token's page.
fn shown_secret(page: &Page) -> String {
    let open = "<code class=\"secret\" id=\"new-token\">";
    let at = page
        .html
        .find(open)
        .unwrap_or_else(|| panic!("a new token on the page: {} {}", page.status, page.html))
        + open.len();
    let len = page.html[at..].find("</code>").unwrap();
    page.html[at..at + len].trim().to_owned()
}

/// Sign in as `login` in a new browser.
async fn signed_in(base: &str, login: &str) -> Browser {
    let mut b = Browser::new(base);
    b.sign_in(login, &demo_password(login)).await;
    b
}

/// Issue a token on the system page of `system` and return (its secret, its id).
async fn issue(b: &mut Browser, api_me: &str, system: i64, label: &str) -> (String, String) {
    b.get(&format!("/systems/{system}")).await;
    let page = b
        .submit(
            &format!("/systems/{system}/tokens"),
            &[("label", label), ("expires_days", "30")],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.html);
    let secret = shown_secret(&page);
    let (status, _, me) = get_auth(api_me, &secret).await;
    assert_eq!(status, 200, "{me}");
    (secret, me["token"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn an_owner_registers_a_system_and_its_token_is_shown_once() {
    let (_dir, server) = demo_server();
    let api_me = format!("{}/api/v1/me", server.base);
    let mut b = signed_in(&server.base, "pmlp.owner").await;

    // The organisation's own systems only, and the form to add one.
    let list = b.get("/systems").await;
    assert_eq!(list.status, 200, "{}", list.html);
    assert!(list.has("id=\"systems\"") && list.has("Iedzīvotāju reģistrs"));
    assert!(
        !list.has("Klientu izpētes sistēma"),
        "BANKA's systems are not PMLP's"
    );
    assert!(list.has("id=\"system-form\"") && list.has("id=\"create-system\""));

    // An empty name is refused; what was typed is kept, escaped.
    let bad = b
        .submit(
            "/systems",
            &[
                ("name", "  "),
                ("kind", "provider"),
                ("description", "Apraksts ar ā un <b>"),
            ],
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.html);
    assert!(bad.has("id=\"error\"") && bad.has("aria-invalid=\"true\""));
    assert!(bad.has("<option value=\"provider\" selected>"));
    // (askama writes `<` as `&#60;`, which `Page::has` does not decode.)
    assert!(
        bad.html.contains("Apraksts ar ā un &#60;b&#62;")
            || bad.html.contains("Apraksts ar ā un &lt;b&gt;")
    );
    assert!(!bad.html.contains("ā un <b>"));
    // A taken name too.
    let dup = b
        .submit(
            "/systems",
            &[
                ("name", "Iedzīvotāju reģistrs"),
                ("kind", "consumer"),
                ("description", "Dublikāts"),
            ],
        )
        .await;
    assert_eq!(dup.status, 422, "{}", dup.html);
    assert!(dup.has("value=\"Iedzīvotāju reģistrs\"") && dup.has(">Dublikāts</textarea>"));
    let list = b.get("/systems").await;
    assert!(
        !list.has("Dublikāts") && !list.has("Apraksts ar ā"),
        "nothing was registered"
    );

    // Registered: to the new system's page with a confirmation.
    let csrf = b.csrf.clone().unwrap();
    let made = b
        .post_raw(
            "/systems",
            &[
                ("csrf", &csrf),
                ("name", "Testa pārskatu sistēma"),
                ("kind", "consumer"),
                ("description", "Pārbaudei"),
            ],
        )
        .await;
    assert_eq!(made.status, 303, "{}", made.html);
    let to = made.location.unwrap();
    let id: i64 = to
        .strip_prefix("/systems/")
        .and_then(|r| r.strip_suffix("?done=created"))
        .unwrap()
        .parse()
        .unwrap();
    let page = b.get(&to).await;
    assert!(page.has("id=\"notice\"") && page.has("Testa pārskatu sistēma"));
    assert!(page.has("id=\"token-form\"") && page.has("id=\"no-tokens\""));
    let list = b.get("/systems").await;
    assert_eq!(system_id(&list, "Testa pārskatu sistēma"), id);

    // A bad validity is refused with the input kept, and issues nothing.
    let bad = b
        .submit(
            &format!("/systems/{id}/tokens"),
            &[("label", "nederīgs termiņš"), ("expires_days", "0")],
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.html);
    assert!(bad.has("value=\"0\"") && bad.has("value=\"nederīgs termiņš\""));
    assert!(bad.has("id=\"error\"") && !bad.has("class=\"secret\""));

    // Issued: a page (not a redirect) with the secret once, not cached.
    let issued = b
        .submit(
            &format!("/systems/{id}/tokens"),
            &[("label", "pārbaudei"), ("expires_days", "30")],
        )
        .await;
    assert_eq!(issued.status, 200, "{}", issued.html);
    assert_eq!(issued.location, None);
    assert_eq!(issued.headers["cache-control"], "no-store");
    let secret = shown_secret(&issued);
    assert!(secret.starts_with("dagr_"), "{secret}");
    assert_eq!(issued.html.matches(&secret).count(), 1, "the secret once");
    assert!(issued.has("data-copy=\"new-token\"") && issued.has("Authorization: Bearer"));
    assert!(issued.has(&format!("href=\"/systems/{id}\"")));

    // It works on the REST API, as this system of PMLP.
    let (status, _, me) = get_auth(&api_me, &secret).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["organisation"], "PMLP");
    assert_eq!(me["system"], id.to_string());
    let tid = me["token"].as_str().unwrap().to_owned();

    // The system page lists it by its prefix, never the secret.
    let page = b.get(&format!("/systems/{id}")).await;
    assert!(
        !page.html.contains(&secret),
        "the secret is never shown again"
    );
    assert!(page.has(&secret[..13]) && page.has("pārbaudei"));
    assert!(
        page.has(&format!("id=\"token-{tid}\"")) && page.has(&format!("id=\"revoke-token-{tid}\""))
    );
    assert!(page.has("data-confirm="));

    // Revoked with a reason: shown on the page, and the REST API refuses it.
    let done = b
        .submit(
            &format!("/tokens/{tid}/revoke"),
            &[("reason", "pārbaude beigusies")],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.html);
    assert!(done.has("id=\"notice\"") && done.has("pārbaude beigusies"));
    assert!(done.has(&format!("id=\"token-status-{tid}\">")));
    assert!(
        !done.has(&format!("id=\"revoke-token-{tid}\"")),
        "no revoke form for a dead token"
    );
    let (status, _, _) = get_auth(&api_me, &secret).await;
    assert_eq!(status, 401);
    // Revoking again is refused readably.
    let csrf = b.csrf.clone().unwrap();
    let again = b
        .post_raw(&format!("/tokens/{tid}/revoke"), &[("csrf", &csrf)])
        .await;
    assert_eq!(again.status, 422, "{}", again.html);
    assert!(again.has("id=\"error\"") && again.has("already revoked"));
}

#[tokio::test]
async fn organisations_see_and_revoke_only_their_own() {
    let (_dir, server) = demo_server();
    let api_me = format!("{}/api/v1/me", server.base);

    // PMLP's system and a token of it.
    let mut pmlp = signed_in(&server.base, "pmlp.owner").await;
    let list = pmlp.get("/systems").await;
    let pmlp_system = system_id(&list, "Iedzīvotāju reģistrs");
    let (pmlp_secret, pmlp_token) = issue(&mut pmlp, &api_me, pmlp_system, "PMLP").await;

    // A consumer sees its organisation's systems, and may not register one.
    let mut banka = signed_in(&server.base, "banka.consumer").await;
    let list = banka.get("/systems").await;
    assert_eq!(list.status, 200, "{}", list.html);
    assert!(list.has("Klientu izpētes sistēma") && !list.has("Iedzīvotāju reģistrs"));
    assert!(!list.has("id=\"system-form\"") && list.has("id=\"add-not-allowed\""));
    let refused = banka
        .submit(
            "/systems",
            &[("name", "Slepenā sistēma"), ("kind", "consumer")],
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.html);
    assert!(refused.has("id=\"error\"") && refused.has("value=\"Slepenā sistēma\""));
    assert!(!banka.get("/systems").await.has(">Slepenā sistēma</a>"));

    // Another organisation's system and token are not there for it.
    let other = banka.get(&format!("/systems/{pmlp_system}")).await;
    assert_eq!(other.status, 404);
    assert!(other.has("id=\"error\"") && !other.has("Iedzīvotāju reģistrs"));
    assert_eq!(banka.get("/systems?organisation=PMLP").await.status, 403);
    assert_eq!(banka.get("/systems/not-a-number").await.status, 404);
    banka.get("/systems").await;
    let csrf = banka.csrf.clone().unwrap();
    let forged = banka
        .post_raw(
            &format!("/systems/{pmlp_system}/tokens"),
            &[("csrf", &csrf), ("expires_days", "30")],
        )
        .await;
    assert_eq!(forged.status, 404);
    assert!(!forged.has("class=\"secret\""));
    let forged = banka
        .post_raw(&format!("/tokens/{pmlp_token}/revoke"), &[("csrf", &csrf)])
        .await;
    assert_eq!(forged.status, 404, "{}", forged.html);
    assert!(forged.has("id=\"error\""));
    assert_eq!(
        get_auth(&api_me, &pmlp_secret).await.0,
        200,
        "PMLP's token still works"
    );

    // A person of BANKA issues tokens for its own system and revokes them; so may an admin.
    let banka_system = system_id(&list, "Klientu izpētes sistēma");
    let (leaked_secret, leaked_token) = issue(&mut banka, &api_me, banka_system, "leaked").await;
    let (banka_secret, banka_token) = issue(&mut banka, &api_me, banka_system, "KYC").await;
    assert_eq!(
        get_auth(&api_me, &banka_secret).await.2["organisation"],
        "BANKA"
    );
    let page = banka.get(&format!("/systems/{banka_system}")).await;
    assert!(!page.html.contains(&banka_secret));
    assert!(page.has(&format!("id=\"revoke-token-{leaked_token}\"")));
    let done = banka
        .submit(
            &format!("/tokens/{leaked_token}/revoke"),
            &[("reason", "leaked")],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.html);
    assert_eq!(get_auth(&api_me, &leaked_secret).await.0, 401);
    assert_eq!(get_auth(&api_me, &banka_secret).await.0, 200);

    // The admin sees every organisation's systems, filtered, and revokes; issues none.
    let mut admin = signed_in(&server.base, "admin").await;
    let all = admin.get("/systems").await;
    assert!(all.has("Klientu izpētes sistēma") && all.has("Iedzīvotāju reģistrs"));
    let only = admin.get("/systems?organisation=BANKA").await;
    assert!(only.has("Klientu izpētes sistēma") && !only.has(">Iedzīvotāju reģistrs</a>"));
    let page = admin.get(&format!("/systems/{banka_system}")).await;
    assert!(!page.has("id=\"token-form\"") && page.has("id=\"token-not-allowed\""));
    let csrf = admin.csrf.clone().unwrap();
    let none = admin
        .post_raw(
            &format!("/systems/{banka_system}/tokens"),
            &[("csrf", &csrf), ("expires_days", "30")],
        )
        .await;
    assert_eq!(none.status, 403, "{}", none.html);
    assert!(none.has("id=\"error\"") && !none.has("class=\"secret\""));
    let done = admin
        .submit(&format!("/tokens/{banka_token}/revoke"), &[("reason", "")])
        .await;
    assert_eq!(done.status, 200, "{}", done.html);
    assert!(done.has("id=\"notice\""));
    assert_eq!(get_auth(&api_me, &banka_secret).await.0, 401);
    assert_eq!(get_auth(&api_me, &pmlp_secret).await.0, 200);
}
