//! TAPIS's help and FAQ page (`/tapis/help`), driven over HTTP as a browser would: the
//! search folds Latvian letters (`kapec` finds „Kāpēc”), the filter is kept, an article's
//! body is escaped text in paragraphs and lists, "Was this helpful?" takes one vote per
//! browser (a second changes it) and refuses a form without the browser's help token or
//! from another site, a bad query is shown as a refusal, and an admin sees the votes,
//! least helpful first. In both languages.

use crate::demo_server;
use crate::support::{Browser, demo_password, text};

const SPLIT_FAQ: &str = "faq-comment-split-lv";

#[tokio::test]
async fn help_is_searched_voted_on_and_counted() {
    let (_dir, server) = demo_server();
    let mut b = Browser::new(&server.base);

    // Anyone finds the Latvian FAQ typed without diacritics; the page sets the help cookie.
    let page = b
        .get("/tapis/help?q=kapec%20komentars%20sadalits&lang=lv")
        .await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.has("<html lang=\"lv\">"));
    assert!(
        page.has("Kāpēc mans komentārs tika sadalīts?"),
        "{}",
        page.html
    );
    assert!(page.has(&format!("id=\"help-{SPLIT_FAQ}\"")));
    assert!(
        page.has("value=\"kapec komentars sadalits\""),
        "the query is kept"
    );
    assert!(page.has("Vai tas palīdzēja?"));
    let token = b
        .cookies
        .get("dagr_help")
        .cloned()
        .expect("the help cookie");
    assert_eq!(token.len(), 64);
    let set = page.headers["set-cookie"].to_str().unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax"),
        "{set}"
    );
    // The body's list items are list items, its text escaped.
    assert!(
        page.has("<li>Jūsu oriģinālais komentārs netiek mainīts"),
        "{}",
        page.html
    );

    // A vote comes back to the same search with a thank-you and the answer shown.
    let back = "/tapis/help?q=kapec%20komentars%20sadalits&lang=lv";
    let voted = b
        .post_raw(
            &format!("/tapis/help/{SPLIT_FAQ}/feedback"),
            &[("csrf", &token), ("helpful", "no"), ("back", back)],
        )
        .await;
    assert_eq!(voted.status, 303, "{}", voted.html);
    let to = voted.location.clone().unwrap();
    assert_eq!(to, format!("{back}&done=voted#help-{SPLIT_FAQ}"));
    let page = b.get(to.split('#').next().unwrap()).await;
    assert!(
        page.has("Paldies! Jūsu atbilde ir saglabāta."),
        "{}",
        page.html
    );
    assert!(
        text(&page.html).contains("Jūsu atbilde: Nē"),
        "{}",
        text(&page.html)
    );
    // Voting again changes the vote.
    b.post_raw(
        &format!("/tapis/help/{SPLIT_FAQ}/feedback"),
        &[("csrf", &token), ("helpful", "yes"), ("back", back)],
    )
    .await;
    let page = b.get(back).await;
    assert!(text(&page.html).contains("Jūsu atbilde: Jā"));

    // Refused: another token, another browser without the cookie, another site's form,
    // an answer that is neither yes nor no, an article that does not exist.
    let forged = b
        .post_raw(
            &format!("/tapis/help/{SPLIT_FAQ}/feedback"),
            &[("csrf", "x"), ("helpful", "no")],
        )
        .await;
    assert_eq!(forged.status, 403);
    let mut other = Browser::new(&server.base);
    let cookieless = other
        .post_raw(
            &format!("/tapis/help/{SPLIT_FAQ}/feedback"),
            &[("csrf", &token), ("helpful", "no")],
        )
        .await;
    assert_eq!(cookieless.status, 403);
    let cross = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/tapis/help/{SPLIT_FAQ}/feedback", server.base))
        .header("origin", "https://evil.example")
        .header("cookie", format!("dagr_help={token}"))
        .form(&[("csrf", token.as_str()), ("helpful", "no")])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);
    let bad = b
        .post_raw(
            &format!("/tapis/help/{SPLIT_FAQ}/feedback"),
            &[("csrf", &token), ("helpful", "maybe")],
        )
        .await;
    assert_eq!(bad.status, 422);
    let missing = b
        .post_raw(
            "/tapis/help/no-such-article/feedback",
            &[("csrf", &token), ("helpful", "yes")],
        )
        .await;
    assert_eq!(missing.status, 404);
    // A second browser's vote counts on its own.
    other.get("/tapis/help?lang=lv").await;
    let other_token = other.cookies["dagr_help"].clone();
    assert_ne!(other_token, token);
    let r = other
        .post_raw(
            &format!("/tapis/help/{SPLIT_FAQ}/feedback"),
            &[("csrf", &other_token), ("helpful", "no")],
        )
        .await;
    assert_eq!(r.status, 303);

    // Filters: a stage and a role; nothing found says so; a query too long is refused.
    let page = b
        .get("/tapis/help?stage=consultation&role=citizen&lang=lv")
        .await;
    assert!(page.has("Iedzīvotājam: kā iesniegt komentāru publiskajā apspriešanā"));
    assert!(!page.has("Plānotājam: kā vadīt plānošanas dokumentu"));
    assert!(page.has("<option value=\"consultation\" selected>"));
    let none = b.get("/tapis/help?q=zzzyyyxxx").await;
    assert_eq!(none.status, 200);
    assert!(none.has("id=\"help-none\""));
    let long = b.get(&format!("/tapis/help?q={}", "a".repeat(101))).await;
    assert_eq!(long.status, 422);
    assert!(long.has("id=\"error-message\""), "{}", long.html);

    // English, through the language switch.
    b.get("/lang/en?back=%2Ftapis%2Fhelp").await;
    let en = b.get("/tapis/help?q=why%20split").await;
    assert!(en.has("<html lang=\"en\">"));
    assert!(en.has("Why was my comment split?"), "{}", en.html);
    assert!(en.has("Was this helpful?"));
    assert!(!en.has("id=\"help-stats\""), "the votes are the admin's");

    // The admin sees the votes: the split FAQ has one "yes" and one "no".
    let mut admin = Browser::new(&server.base);
    admin.sign_in("admin", &demo_password("admin")).await;
    let page = admin.get("/tapis/help").await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.has("id=\"help-stats\""), "{}", page.html);
    let row_at = page
        .html
        .find(&format!("id=\"help-stats-{SPLIT_FAQ}\""))
        .expect("a row of the split FAQ");
    let row = &page.html[row_at..row_at + page.html[row_at..].find("</tr>").unwrap()];
    assert_eq!(
        text(row).split(' ').rev().take(3).collect::<Vec<_>>(),
        ["%", "50", "1"],
        "{row}"
    );
}
