//! # Help and FAQ of TAPIS
//!
//! Articles in Latvian and English, each for one stage of a document (or every stage) and
//! one role (`planner`, `institution`, `public`, `citizen`, `admin`, or `any`), kept in the
//! metadata database (`tapis_help`): an admin edits and deletes them, the demo seeds the
//! shipped ones from `articles.json` ([`seed_defaults`], which never overwrites an admin's
//! edit nor brings back an article an admin deleted).
//!
//! - **Search** ([`search`]) folds case and the Latvian letters ([`fold`]: `e` finds `ē`,
//!   `s` finds `š`); the folded title and body are stored beside the text, so a search is a
//!   `LIKE` on them, the same SQL on SQLite and PostgreSQL. Every word must occur; articles
//!   whose title holds more of the words come first. The query, its words and the results
//!   are limited ([`MAX_QUERY`], [`MAX_WORDS`], [`MAX_RESULTS`]).
//! - **Bodies** are plain text with a small subset of markdown: paragraphs separated by an
//!   empty line, lines starting with `- ` as a bulleted list ([`blocks`]). No markup is
//!   ever taken from the text: a page escapes it all.
//! - **"Was this helpful?"** ([`vote`]) is anonymous: one vote per article and voter, a
//!   voter being a keyed hash (HMAC under a key of `tapis_secrets`) of the portal's browser
//!   cookie or, over REST, of the caller's network source and the day; voting again
//!   changes the vote. So one source adds at most one vote per article and day, and the
//!   table holds no address. [`stats`] (an admin) counts the votes, least helpful first.
//! - [`api`]: the REST routes under `/api/v1/tapis/help`.

pub mod api;

use std::collections::HashMap;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use crate::governance::{GovError, GovResult};
use crate::model::Time;
use crate::store::StoreError;

use super::model::{Stage, text};
use super::service::{Caller, require_admin};
use super::store::{TapisStore, db};

pub use api::routes;

/// Longest search query, in characters.
pub const MAX_QUERY: usize = 100;
/// Most words of a search query.
pub const MAX_WORDS: usize = 8;
/// Results of a search when no `limit` is given.
pub const DEFAULT_RESULTS: i64 = 20;
/// Most results of a search.
pub const MAX_RESULTS: i64 = 100;
/// Longest article id: `a-z`, `0-9`, `-` and `_`.
pub const MAX_ID: usize = 64;
/// Longest title, in characters.
pub const MAX_TITLE: usize = 200;
/// Longest body, in characters.
pub const MAX_BODY: usize = 8_000;
/// Most articles kept (deleted ones not counted).
pub const MAX_ARTICLES: i64 = 2_000;
/// Largest body of a vote over REST, in bytes (`{"helpful": false}` is 18).
pub const MAX_FEEDBACK_BYTES: usize = 256;

/// Who `updated_by` names for the shipped articles until an admin edits them.
const SEEDED_BY: &str = "seed";

/// The shipped articles (the demo seeds them).
const SHIPPED: &str = include_str!("articles.json");

/// The language of an article.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HelpLang {
    /// Latvian.
    Lv,
    /// English.
    En,
}

impl HelpLang {
    /// The code used in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            HelpLang::Lv => "lv",
            HelpLang::En => "en",
        }
    }

    /// Parse [`HelpLang::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [HelpLang::Lv, HelpLang::En]
            .into_iter()
            .find(|l| l.as_str() == s)
    }
}

/// Whom an article is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HelpRole {
    /// The planners of a municipality.
    Planner,
    /// Institutions answering through their link.
    Institution,
    /// Anyone reading documents.
    Public,
    /// Citizens commenting in a consultation.
    Citizen,
    /// DAGR administrators.
    Admin,
    /// Everyone.
    Any,
}

impl HelpRole {
    /// Every role, `any` last.
    pub const ALL: [HelpRole; 6] = [
        HelpRole::Planner,
        HelpRole::Institution,
        HelpRole::Public,
        HelpRole::Citizen,
        HelpRole::Admin,
        HelpRole::Any,
    ];

    /// The name used in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            HelpRole::Planner => "planner",
            HelpRole::Institution => "institution",
            HelpRole::Public => "public",
            HelpRole::Citizen => "citizen",
            HelpRole::Admin => "admin",
            HelpRole::Any => "any",
        }
    }

    /// Parse [`HelpRole::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        HelpRole::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// A help article.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Article {
    /// Id (`a-z`, `0-9`, `-`, `_`).
    pub id: String,
    /// Language.
    pub lang: HelpLang,
    /// The stage it is about; absent for every stage.
    pub stage: Option<Stage>,
    /// Whom it is for.
    pub role: HelpRole,
    /// Title (a question, for a FAQ).
    pub title: String,
    /// Body: plain text; paragraphs separated by an empty line, `- ` starts a list item.
    pub body: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
}

/// An article as an admin writes it (`PUT /api/v1/tapis/help/{id}`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArticleInput {
    /// Language.
    pub lang: HelpLang,
    /// The stage it is about; absent or null for every stage.
    #[serde(default)]
    pub stage: Option<Stage>,
    /// Whom it is for.
    pub role: HelpRole,
    /// Title, 1 to [`MAX_TITLE`] characters.
    pub title: String,
    /// Body, 1 to [`MAX_BODY`] characters.
    pub body: String,
}

/// What to search for. Every field is optional; the texts are checked by [`search`].
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HelpQuery {
    /// Words to find in the title or body, case and Latvian diacritics folded (`e` finds
    /// `ē`); at most 100 characters and 8 words.
    pub q: Option<String>,
    /// A stage: its articles and those of every stage.
    pub stage: Option<String>,
    /// A role: its articles and those for everyone.
    pub role: Option<String>,
    /// `lv` or `en`.
    pub lang: Option<String>,
    /// At most this many (default 20, 1–100).
    pub limit: Option<i64>,
}

/// A vote.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Feedback {
    /// Whether the article helped.
    pub helpful: bool,
}

/// The votes on an article.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ArticleStats {
    /// The article.
    pub id: String,
    /// Its language.
    pub lang: HelpLang,
    /// Its title.
    pub title: String,
    /// "Yes, it helped".
    pub yes: i64,
    /// "No, it did not".
    pub no: i64,
    /// `yes / (yes + no)`; absent without votes.
    pub helpful_share: Option<f64>,
}

/// Who votes, before it is hashed ([`vote`]).
#[derive(Debug, Clone, Copy)]
pub enum Voter<'a> {
    /// A browser, by the portal's random help cookie.
    Browser(&'a str),
    /// A REST caller, by its network source ([`crate::throttle::source_of`]): one vote a
    /// day.
    Source(&'a str),
}

/// A block of an article's body, as a page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// A paragraph (its lines joined by spaces).
    Paragraph(String),
    /// A bulleted list.
    List(Vec<String>),
}

/// Fold `s` for search: lower case, the Latvian letters (ā č ē ģ ī ķ ļ ņ š ū ž, and ō ŗ
/// of the old spelling) to their base letters, combining marks of decomposed letters
/// dropped, runs of white space as one space, trimmed.
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.chars().flat_map(char::to_lowercase) {
        let c = match c {
            'ā' => 'a',
            'č' => 'c',
            'ē' => 'e',
            'ģ' => 'g',
            'ī' => 'i',
            'ķ' => 'k',
            'ļ' => 'l',
            'ņ' => 'n',
            'ō' => 'o',
            'ŗ' => 'r',
            'š' => 's',
            'ū' => 'u',
            'ž' => 'z',
            c => c,
        };
        if ('\u{0300}'..='\u{036f}').contains(&c) {
            continue;
        }
        if c.is_whitespace() {
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        out.push(c);
    }
    out
}

/// The blocks of a body: paragraphs split at empty lines, runs of `- ` lines as lists.
pub fn blocks(body: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut para: Vec<&str> = Vec::new();
    let mut list: Vec<String> = Vec::new();
    fn flush(out: &mut Vec<Block>, para: &mut Vec<&str>, list: &mut Vec<String>) {
        if !para.is_empty() {
            out.push(Block::Paragraph(para.join(" ")));
            para.clear();
        }
        if !list.is_empty() {
            out.push(Block::List(std::mem::take(list)));
        }
    }
    for line in body.lines().map(str::trim) {
        if line.is_empty() {
            flush(&mut out, &mut para, &mut list);
        } else if let Some(item) = line.strip_prefix("- ") {
            if !para.is_empty() {
                out.push(Block::Paragraph(para.join(" ")));
                para.clear();
            }
            list.push(item.trim().to_owned());
        } else {
            if !list.is_empty() {
                out.push(Block::List(std::mem::take(&mut list)));
            }
            para.push(line);
        }
    }
    flush(&mut out, &mut para, &mut list);
    out
}

fn invalid(field: &str, reason: impl Into<String>) -> GovError {
    GovError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Whether `id` is an article id (a path segment of its own: `stats` is taken).
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID
        && id != "stats"
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn check_id(id: &str) -> GovResult<()> {
    if valid_id(id) {
        Ok(())
    } else {
        Err(invalid(
            "id",
            format!("1 to {MAX_ID} of a-z, 0-9, - and _ (not `stats`)"),
        ))
    }
}

/// An article checked: title and body trimmed, within their limits, no control characters.
fn checked(a: &ArticleInput) -> GovResult<ArticleInput> {
    Ok(ArticleInput {
        title: text("title", &a.title, MAX_TITLE)?,
        body: text("body", &a.body, MAX_BODY)?,
        ..a.clone()
    })
}

fn corrupt(what: String) -> GovError {
    GovError::Store(StoreError::Corrupt(what))
}

fn article_row(r: &AnyRow) -> GovResult<Article> {
    let lang: String = r.try_get("lang").map_err(db)?;
    let role: String = r.try_get("role").map_err(db)?;
    let stage: Option<String> = r.try_get("stage").map_err(db)?;
    Ok(Article {
        id: r.try_get("id").map_err(db)?,
        lang: HelpLang::parse(&lang).ok_or_else(|| corrupt(format!("help language `{lang}`")))?,
        stage: stage
            .map(|s| Stage::parse(&s).ok_or_else(|| corrupt(format!("help stage `{s}`"))))
            .transpose()?,
        role: HelpRole::parse(&role).ok_or_else(|| corrupt(format!("help role `{role}`")))?,
        title: r.try_get("title").map_err(db)?,
        body: r.try_get("body").map_err(db)?,
        updated_at: Time(r.try_get("updated_at").map_err(db)?).to_rfc3339(),
    })
}

const COLUMNS: &str = "id, lang, stage, role, title, body, updated_at";

/// `%word%` for `LIKE ... ESCAPE '\'`.
fn like(word: &str) -> String {
    let mut p = String::with_capacity(word.len() + 2);
    p.push('%');
    for c in word.chars() {
        if matches!(c, '\\' | '%' | '_') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// Where an article sorts when nothing ranks it: every-stage articles first, then the
/// stages in their order; `any` before the roles.
fn place(a: &Article) -> (usize, usize) {
    let stage = match a.stage {
        None => 0,
        Some(Stage::Cancelled) => Stage::WAY.len() + 1,
        Some(s) => 1 + Stage::WAY.iter().position(|w| *w == s).unwrap_or_default(),
    };
    let role = match a.role {
        HelpRole::Any => 0,
        r => {
            1 + HelpRole::ALL
                .iter()
                .position(|x| *x == r)
                .unwrap_or_default()
        }
    };
    (stage, role)
}

/// Order articles that matched `words` (folded): more of the words in the title first, then
/// the whole query in the title, then the articles of the `stage` and `role` searched for
/// before those of every stage and for everyone, then [`place`], then id.
pub fn rank(
    articles: &mut [Article],
    words: &[String],
    stage: Option<Stage>,
    role: Option<HelpRole>,
) {
    let phrase = words.join(" ");
    articles.sort_by_cached_key(|a| {
        let title = fold(&a.title);
        let hits = words.iter().filter(|w| title.contains(w.as_str())).count();
        let whole = !phrase.is_empty() && title.contains(&phrase);
        (
            std::cmp::Reverse(hits),
            !whole,
            stage.is_some() && a.stage != stage,
            role.is_some() && Some(a.role) != role,
            place(a),
            a.id.clone(),
        )
    });
}

/// A folded word without its ending, so that it finds the word's other forms (Latvian
/// nouns and verbs change their endings: `komentars` finds `komentaru`): a word of five
/// letters or more loses up to two of `a e i o u s m` at its end, keeping four.
fn stem(word: &str) -> &str {
    let mut w = word;
    for _ in 0..2 {
        match w.char_indices().last() {
            Some((i, c)) if w.chars().count() > 4 && "aeiousm".contains(c) => w = &w[..i],
            _ => break,
        }
    }
    w
}

/// The words of a query, folded, their endings dropped ([`stem`]) and without repeats;
/// refused (naming `q`) when too long.
pub fn query_words(q: &str) -> GovResult<Vec<String>> {
    if q.chars().count() > MAX_QUERY {
        return Err(invalid("q", format!("at most {MAX_QUERY} characters")));
    }
    if q.chars().any(char::is_control) {
        return Err(invalid("q", "no control characters"));
    }
    let mut words: Vec<String> = Vec::new();
    for w in fold(q).split(' ').filter(|w| !w.is_empty()).map(stem) {
        if !words.iter().any(|x| x == w) {
            words.push(w.to_owned());
        }
    }
    if words.len() > MAX_WORDS {
        return Err(invalid("q", format!("at most {MAX_WORDS} words")));
    }
    Ok(words)
}

/// Search the articles (public): every word of `q` in the title or body, within the stage
/// (and every-stage articles), the role (and articles for everyone) and the language given.
pub async fn search(store: &TapisStore, q: &HelpQuery) -> GovResult<Vec<Article>> {
    let limit = q.limit.unwrap_or(DEFAULT_RESULTS);
    if !(1..=MAX_RESULTS).contains(&limit) {
        return Err(invalid("limit", format!("1 to {MAX_RESULTS}")));
    }
    let words = query_words(q.q.as_deref().unwrap_or(""))?;
    let mut sql = format!("SELECT {COLUMNS} FROM tapis_help WHERE deleted_at IS NULL");
    let mut args: Vec<String> = Vec::new();
    let mut arg = |v: String| {
        args.push(v);
        format!("${}", args.len())
    };
    if let Some(l) = q.lang.as_deref().filter(|l| !l.is_empty()) {
        let l = HelpLang::parse(l).ok_or_else(|| invalid("lang", "lv or en"))?;
        let p = arg(l.as_str().into());
        sql.push_str(&format!(" AND lang = {p}"));
    }
    let stage = q
        .stage
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| Stage::parse(s).ok_or_else(|| invalid("stage", "not a stage of a document")))
        .transpose()?;
    if let Some(s) = stage {
        let p = arg(s.as_str().into());
        sql.push_str(&format!(" AND (stage = {p} OR stage IS NULL)"));
    }
    let role = q
        .role
        .as_deref()
        .filter(|r| !r.is_empty())
        .map(|r| {
            HelpRole::parse(r).ok_or_else(|| {
                invalid(
                    "role",
                    "planner, institution, public, citizen, admin or any",
                )
            })
        })
        .transpose()?
        .filter(|r| *r != HelpRole::Any);
    if let Some(r) = role {
        let p = arg(r.as_str().into());
        sql.push_str(&format!(" AND (role = {p} OR role = 'any')"));
    }
    for w in &words {
        let p = arg(like(w));
        sql.push_str(&format!(
            " AND (search_title LIKE {p} ESCAPE '\\' OR search_body LIKE {p} ESCAPE '\\')"
        ));
    }
    sql.push_str(&format!(" LIMIT {MAX_ARTICLES}"));
    let mut query = sqlx::query(&sql);
    for a in &args {
        query = query.bind(a.as_str());
    }
    let rows = query.fetch_all(&store.pool).await.map_err(db)?;
    let mut found = rows
        .iter()
        .map(article_row)
        .collect::<GovResult<Vec<_>>>()?;
    rank(&mut found, &words, stage, role);
    found.truncate(limit as usize);
    Ok(found)
}

/// One article (public; 404 for a deleted one).
pub async fn article(store: &TapisStore, id: &str) -> GovResult<Article> {
    let not_found = || GovError::NotFound(format!("help article `{id}`"));
    if !valid_id(id) {
        return Err(not_found());
    }
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM tapis_help WHERE id = $1 AND deleted_at IS NULL"
    ))
    .bind(id)
    .fetch_optional(&store.pool)
    .await
    .map_err(db)?
    .ok_or_else(not_found)?;
    article_row(&row)
}

/// Write article `id` (a new one, or a deleted one again) unless `only_new` and the id is
/// taken (live or deleted). `Some(created)` when written.
async fn write(
    store: &TapisStore,
    id: &str,
    a: &ArticleInput,
    actor: &str,
    only_new: bool,
) -> GovResult<Option<bool>> {
    let now = Time::now().0;
    let mut tx = store.pool.begin().await.map_err(db)?;
    let existing: Option<Option<i64>> =
        sqlx::query_scalar("SELECT deleted_at FROM tapis_help WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
    let live = matches!(existing, Some(None));
    if existing.is_some() && only_new {
        return Ok(None);
    }
    if !live {
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM tapis_help WHERE deleted_at IS NULL")
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
        if count >= MAX_ARTICLES {
            return Err(GovError::Conflict(format!(
                "there are {MAX_ARTICLES} help articles already: delete one first"
            )));
        }
    }
    let stage = a.stage.map(Stage::as_str);
    let (search_title, search_body) = (fold(&a.title), fold(&a.body));
    let r = if existing.is_none() {
        sqlx::query(
            "INSERT INTO tapis_help (id, lang, stage, role, title, body, search_title, \
             search_body, updated_by, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(id)
        .bind(a.lang.as_str())
        .bind(stage)
        .bind(a.role.as_str())
        .bind(&a.title)
        .bind(&a.body)
        .bind(&search_title)
        .bind(&search_body)
        .bind(actor)
        .bind(now)
        .execute(&mut *tx)
        .await
    } else {
        sqlx::query(
            "UPDATE tapis_help SET lang = $1, stage = $2, role = $3, title = $4, body = $5, \
             search_title = $6, search_body = $7, updated_by = $8, updated_at = $9, \
             deleted_at = NULL WHERE id = $10",
        )
        .bind(a.lang.as_str())
        .bind(stage)
        .bind(a.role.as_str())
        .bind(&a.title)
        .bind(&a.body)
        .bind(&search_title)
        .bind(&search_body)
        .bind(actor)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await
    };
    r.map_err(|e| match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => GovError::Conflict(format!(
            "help article `{id}` was written at the same time; read it again"
        )),
        _ => db(e),
    })?;
    tx.commit().await.map_err(db)?;
    Ok(Some(!live))
}

/// Write an article (an admin): the article, and whether it is new (201) or changed (200).
pub async fn put_article(
    store: &TapisStore,
    c: &Caller,
    id: &str,
    a: &ArticleInput,
) -> GovResult<(Article, bool)> {
    require_admin(c)?;
    check_id(id)?;
    let a = checked(a)?;
    let created = write(store, id, &a, "admin", false)
        .await?
        .unwrap_or_default();
    Ok((article(store, id).await?, created))
}

/// Delete an article (an admin); its votes go with it. Seeding does not bring it back.
pub async fn delete_article(store: &TapisStore, c: &Caller, id: &str) -> GovResult<()> {
    require_admin(c)?;
    let gone = || GovError::NotFound(format!("help article `{id}`"));
    if !valid_id(id) {
        return Err(gone());
    }
    let now = Time::now().0;
    let mut tx = store.pool.begin().await.map_err(db)?;
    let r = sqlx::query(
        "UPDATE tapis_help SET deleted_at = $1, updated_at = $1, updated_by = 'admin' \
         WHERE id = $2 AND deleted_at IS NULL",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    if r.rows_affected() != 1 {
        return Err(gone());
    }
    sqlx::query("DELETE FROM tapis_help_feedback WHERE article = $1")
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)
}

/// The key voters are hashed under (made at first use, shared by the replicas).
async fn voter_key(store: &TapisStore) -> GovResult<Vec<u8>> {
    let get = || async {
        sqlx::query_scalar::<_, String>("SELECT value FROM tapis_secrets WHERE name = 'help'")
            .fetch_optional(&store.pool)
            .await
            .map_err(db)
    };
    let decode = |k: String| {
        (0..k.len())
            .step_by(2)
            .map(|i| k.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
            .collect::<Option<Vec<u8>>>()
            .filter(|k| k.len() == 32)
            .ok_or_else(|| corrupt("the help voters' key".into()))
    };
    if let Some(k) = get().await? {
        return decode(k);
    }
    let mut k = [0u8; 32];
    getrandom::fill(&mut k).map_err(|e| corrupt(format!("no randomness: {e}")))?;
    // A concurrent first use may win: its key is the one kept.
    let _ = sqlx::query("INSERT INTO tapis_secrets (name, value) VALUES ('help', $1)")
        .bind(crate::auth::to_hex(&k))
        .execute(&store.pool)
        .await;
    decode(
        get()
            .await?
            .ok_or_else(|| GovError::Conflict("no help voters' key; try again".into()))?,
    )
}

/// The stored key of a voter: HMAC-SHA-256 under [`voter_key`], 128 bits in hex.
fn voter_hash(key: &[u8], v: Voter<'_>) -> String {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    match v {
        Voter::Browser(cookie) => m.update(format!("tapis-help:browser:{cookie}").as_bytes()),
        Voter::Source(source) => {
            let day = crate::calendar::riga_date(Time::now().0);
            m.update(format!("tapis-help:source:{source}:{day}").as_bytes())
        }
    }
    crate::auth::to_hex(&m.finalize().into_bytes()[..16])
}

/// Record a vote on article `id` (anyone; 404 for no such article): one per article and
/// voter, a second replacing the first.
pub async fn vote(store: &TapisStore, id: &str, helpful: bool, voter: Voter<'_>) -> GovResult<()> {
    article(store, id).await?;
    let key = voter_key(store).await?;
    sqlx::query(
        "INSERT INTO tapis_help_feedback (article, voter, helpful, at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (article, voter) DO UPDATE SET helpful = excluded.helpful, at = excluded.at",
    )
    .bind(id)
    .bind(voter_hash(&key, voter))
    .bind(i64::from(helpful))
    .bind(Time::now().0)
    .execute(&store.pool)
    .await
    .map_err(db)?;
    Ok(())
}

/// The votes `voter` has given, by article.
pub async fn votes_of(store: &TapisStore, voter: Voter<'_>) -> GovResult<HashMap<String, bool>> {
    let key = voter_key(store).await?;
    let rows =
        sqlx::query("SELECT article, helpful FROM tapis_help_feedback WHERE voter = $1 LIMIT $2")
            .bind(voter_hash(&key, voter))
            .bind(MAX_ARTICLES)
            .fetch_all(&store.pool)
            .await
            .map_err(db)?;
    rows.iter()
        .map(|r| {
            let helpful: i64 = r.try_get("helpful").map_err(db)?;
            Ok((r.try_get("article").map_err(db)?, helpful == 1))
        })
        .collect()
}

/// The votes on every article (an admin): the least helpful first (the lowest share of
/// "yes", then the most "no"), articles without votes last.
pub async fn stats(store: &TapisStore, c: &Caller) -> GovResult<Vec<ArticleStats>> {
    require_admin(c)?;
    let rows = sqlx::query(
        "SELECT h.id, h.lang, h.title, \
         COUNT(CASE WHEN f.helpful = 1 THEN 1 END) AS yes, \
         COUNT(CASE WHEN f.helpful = 0 THEN 1 END) AS no \
         FROM tapis_help h LEFT JOIN tapis_help_feedback f ON f.article = h.id \
         WHERE h.deleted_at IS NULL GROUP BY h.id, h.lang, h.title",
    )
    .fetch_all(&store.pool)
    .await
    .map_err(db)?;
    let mut out = rows
        .iter()
        .map(|r| {
            let lang: String = r.try_get("lang").map_err(db)?;
            let yes: i64 = r.try_get("yes").map_err(db)?;
            let no: i64 = r.try_get("no").map_err(db)?;
            Ok(ArticleStats {
                id: r.try_get("id").map_err(db)?,
                lang: HelpLang::parse(&lang)
                    .ok_or_else(|| corrupt(format!("help language `{lang}`")))?,
                title: r.try_get("title").map_err(db)?,
                yes,
                no,
                helpful_share: (yes + no > 0).then(|| yes as f64 / (yes + no) as f64),
            })
        })
        .collect::<GovResult<Vec<_>>>()?;
    out.sort_by(|a, b| {
        let share = |s: &ArticleStats| s.helpful_share.unwrap_or(f64::INFINITY);
        share(a)
            .total_cmp(&share(b))
            .then(b.no.cmp(&a.no))
            .then(a.id.cmp(&b.id))
    });
    Ok(out)
}

/// A shipped article as `articles.json` writes it: the body as lines.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Shipped {
    id: String,
    lang: HelpLang,
    stage: Option<Stage>,
    role: HelpRole,
    title: String,
    body: Vec<String>,
}

/// The shipped articles, checked as an admin's would be.
pub fn shipped() -> GovResult<Vec<(String, ArticleInput)>> {
    let list: Vec<Shipped> = serde_json::from_str(SHIPPED)
        .map_err(|e| corrupt(format!("the shipped help articles: {e}")))?;
    list.into_iter()
        .map(|s| {
            check_id(&s.id)?;
            let a = checked(&ArticleInput {
                lang: s.lang,
                stage: s.stage,
                role: s.role,
                title: s.title,
                body: s.body.join("\n"),
            })?;
            Ok((s.id, a))
        })
        .collect()
}

/// Insert the shipped articles that are missing (resumable): an article an admin edited
/// or deleted is left as it is. Returns how many were inserted.
pub async fn seed_defaults(store: &TapisStore) -> GovResult<usize> {
    let mut n = 0;
    for (id, a) in shipped()? {
        if write(store, &id, &a, SEEDED_BY, true).await?.is_some() {
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_takes_case_and_latvian_letters_away() {
        assert_eq!(fold("Kāpēc mans KOMENTĀRS"), "kapec mans komentars");
        assert_eq!(
            fold("ā č ē ģ ī ķ ļ ņ š ū ž Ā Č Ē Ģ Ī Ķ Ļ Ņ Š Ū Ž"),
            "a c e g i k l n s u z a c e g i k l n s u z"
        );
        // Decomposed letters (e + combining macron) fold as the composed ones do.
        assert_eq!(fold("Te\u{0304}rms"), "terms");
        assert_eq!(fold("  a \n\t b  "), "a b");
        assert_eq!(fold("Nosacījumi"), fold("NOSACIJUMI"));
    }

    #[test]
    fn query_words_are_folded_unique_and_limited() {
        assert_eq!(query_words("Ēka  eka ŠĶĒRSO").unwrap(), ["eka", "sker"]);
        assert_eq!(query_words("komentārs komentāru").unwrap(), ["komentar"]);
        assert_eq!(
            query_words("kvīts receipt flag").unwrap(),
            ["kvit", "receipt", "flag"]
        );
        assert!(query_words("").unwrap().is_empty());
        assert!(query_words(&"a".repeat(MAX_QUERY + 1)).is_err());
        assert!(query_words("a b c d e f g h i").is_err());
        assert!(query_words("a\u{0}").is_err());
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like("50%_a\\"), "%50\\%\\_a\\\\%");
    }

    #[test]
    fn bodies_are_paragraphs_and_lists() {
        let b = blocks("Pirmā rinda\nturpinās.\n\n- viens\n- divi\nBeigas.\n");
        assert_eq!(
            b,
            [
                Block::Paragraph("Pirmā rinda turpinās.".into()),
                Block::List(vec!["viens".into(), "divi".into()]),
                Block::Paragraph("Beigas.".into()),
            ]
        );
        assert_eq!(blocks("<b>x</b>"), [Block::Paragraph("<b>x</b>".into())]);
    }

    #[test]
    fn ids_are_slugs() {
        assert!(valid_id("faq-overdue-lv"));
        assert!(!valid_id("stats"));
        assert!(!valid_id("Faq"));
        assert!(!valid_id("a/b"));
        assert!(!valid_id(""));
        assert!(!valid_id(&"a".repeat(MAX_ID + 1)));
    }

    #[test]
    fn shipped_articles_cover_every_stage_and_role_in_both_languages() {
        let all = shipped().unwrap();
        for lang in [HelpLang::Lv, HelpLang::En] {
            for stage in Stage::WAY.into_iter().chain([Stage::Cancelled]) {
                assert!(
                    all.iter()
                        .any(|(_, a)| a.lang == lang && a.stage == Some(stage)),
                    "no {lang:?} article for {stage:?}"
                );
            }
            for role in HelpRole::ALL {
                assert!(
                    all.iter().any(|(_, a)| a.lang == lang && a.role == role),
                    "no {lang:?} article for {role:?}"
                );
            }
        }
        let titles: Vec<&str> = all.iter().map(|(_, a)| a.title.as_str()).collect();
        assert!(titles.contains(&"Kāpēc mans komentārs tika sadalīts?"));
        assert!(titles.contains(&"Why was my comment split?"));
        assert!(titles.contains(&"What does the overdue flag mean?"));
        let ids: std::collections::HashSet<&str> = all.iter().map(|(i, _)| i.as_str()).collect();
        assert_eq!(ids.len(), all.len(), "an id twice");
    }

    fn art(id: &str, title: &str, stage: Option<Stage>, role: HelpRole) -> Article {
        Article {
            id: id.into(),
            lang: HelpLang::Lv,
            stage,
            role,
            title: title.into(),
            body: String::new(),
            updated_at: String::new(),
        }
    }

    #[test]
    fn title_hits_rank_above_body_hits() {
        let mut list = vec![
            art("body-only", "Citi jautājumi", None, HelpRole::Any),
            art("one-word", "Komentāra kvīts", None, HelpRole::Any),
            art("other", "Cits", None, HelpRole::Any),
            art(
                "both-words",
                "Kāpēc komentārs tika sadalīts",
                None,
                HelpRole::Any,
            ),
        ];
        let words = query_words("komentars sadalits").unwrap();
        rank(&mut list, &words, None, None);
        let ids: Vec<&str> = list.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["both-words", "one-word", "body-only", "other"]);
    }

    #[test]
    fn without_words_articles_follow_the_stages() {
        let mut list = vec![
            art("c", "C", Some(Stage::Cancelled), HelpRole::Any),
            art("e", "E", Some(Stage::Evaluation), HelpRole::Planner),
            art("g", "G", None, HelpRole::Any),
            art("i", "I", Some(Stage::Initiated), HelpRole::Any),
            art("e0", "E0", Some(Stage::Evaluation), HelpRole::Any),
        ];
        rank(&mut list, &[], None, None);
        let ids: Vec<&str> = list.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["g", "i", "e0", "e", "c"]);
        // Searched for a stage and a role: theirs first, then every stage's and everyone's.
        rank(
            &mut list,
            &[],
            Some(Stage::Evaluation),
            Some(HelpRole::Planner),
        );
        let ids: Vec<&str> = list.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["e", "e0", "g", "i", "c"]);
    }

    async fn store() -> (tempfile::TempDir, TapisStore) {
        let dir = tempfile::tempdir().unwrap();
        let meta = crate::store::MetaStore::open_sqlite(&dir.path().join("meta.db"))
            .await
            .unwrap();
        (dir, TapisStore::new(&meta))
    }

    fn input(title: &str, body: &str) -> ArticleInput {
        ArticleInput {
            lang: HelpLang::Lv,
            stage: Some(Stage::Consultation),
            role: HelpRole::Citizen,
            title: title.into(),
            body: body.into(),
        }
    }

    fn q(words: &str) -> HelpQuery {
        HelpQuery {
            q: Some(words.into()),
            ..HelpQuery::default()
        }
    }

    fn ids(list: &[Article]) -> Vec<&str> {
        list.iter().map(|a| a.id.as_str()).collect()
    }

    #[tokio::test]
    async fn search_folds_ranks_and_filters_on_sqlite() {
        let (_dir, s) = store().await;
        let admin = Caller::Admin;
        put_article(
            &s,
            &admin,
            "in-body",
            &input("Kvīts", "Kā iesniegt komentāru"),
        )
        .await
        .unwrap();
        put_article(
            &s,
            &admin,
            "in-title",
            &input("Komentāru iesniegšana", "Teksts"),
        )
        .await
        .unwrap();
        let mut en = input("Receipts", "Commenting: 100% online_");
        en.lang = HelpLang::En;
        en.stage = None;
        en.role = HelpRole::Any;
        put_article(&s, &admin, "english", &en).await.unwrap();

        // `e` finds `ē`, case folded, title hits first.
        assert_eq!(
            ids(&search(&s, &q("KOMENTARU")).await.unwrap()),
            ["in-title", "in-body"]
        );
        assert_eq!(ids(&search(&s, &q("kvits")).await.unwrap()), ["in-body"]);
        // Every word must occur.
        assert!(search(&s, &q("komentaru zzz")).await.unwrap().is_empty());
        // `%` and `_` are letters, not wildcards.
        assert_eq!(ids(&search(&s, &q("100%")).await.unwrap()), ["english"]);
        assert!(search(&s, &q("1_0")).await.unwrap().is_empty());
        // Filters: language; a stage takes every-stage articles too; a role those for all.
        let lv = HelpQuery {
            lang: Some("lv".into()),
            ..HelpQuery::default()
        };
        assert_eq!(search(&s, &lv).await.unwrap().len(), 2);
        let drafting = HelpQuery {
            stage: Some("drafting".into()),
            ..HelpQuery::default()
        };
        assert_eq!(ids(&search(&s, &drafting).await.unwrap()), ["english"]);
        let planner = HelpQuery {
            role: Some("planner".into()),
            ..HelpQuery::default()
        };
        assert_eq!(ids(&search(&s, &planner).await.unwrap()), ["english"]);
        // Limits and bad filters name the field.
        for (bad, field) in [
            (
                HelpQuery {
                    limit: Some(0),
                    ..HelpQuery::default()
                },
                "limit",
            ),
            (
                HelpQuery {
                    limit: Some(MAX_RESULTS + 1),
                    ..HelpQuery::default()
                },
                "limit",
            ),
            (
                HelpQuery {
                    stage: Some("nope".into()),
                    ..HelpQuery::default()
                },
                "stage",
            ),
            (
                HelpQuery {
                    role: Some("mayor".into()),
                    ..HelpQuery::default()
                },
                "role",
            ),
            (
                HelpQuery {
                    lang: Some("de".into()),
                    ..HelpQuery::default()
                },
                "lang",
            ),
            (q(&"x".repeat(MAX_QUERY + 1)), "q"),
        ] {
            match search(&s, &bad).await {
                Err(GovError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        let one = HelpQuery {
            limit: Some(1),
            ..HelpQuery::default()
        };
        assert_eq!(search(&s, &one).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn only_an_admin_edits_and_seeding_keeps_edits() {
        let (_dir, s) = store().await;
        let n = seed_defaults(&s).await.unwrap();
        assert_eq!(n, shipped().unwrap().len());
        assert_eq!(seed_defaults(&s).await.unwrap(), 0, "resumable");

        // `e` finds `ē` in the shipped Latvian FAQ.
        let found = search(
            &s,
            &HelpQuery {
                q: Some("kapec komentars sadalits".into()),
                lang: Some("lv".into()),
                ..HelpQuery::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(found[0].title, "Kāpēc mans komentārs tika sadalīts?");

        let public = Caller::Public;
        let edit = input("Labots", "Administratora teksts");
        assert!(matches!(
            put_article(&s, &public, "faq-overdue-lv", &edit).await,
            Err(GovError::Forbidden(_))
        ));
        assert!(matches!(
            delete_article(&s, &public, "faq-overdue-lv").await,
            Err(GovError::Forbidden(_))
        ));
        let admin = Caller::Admin;
        let (a, created) = put_article(&s, &admin, "faq-overdue-lv", &edit)
            .await
            .unwrap();
        assert!(!created);
        assert_eq!(a.title, "Labots");
        delete_article(&s, &admin, "faq-link-lv").await.unwrap();
        assert!(matches!(
            delete_article(&s, &admin, "faq-link-lv").await,
            Err(GovError::NotFound(_))
        ));
        // Seeding again neither overwrites the edit nor brings back the deleted article.
        assert_eq!(seed_defaults(&s).await.unwrap(), 0);
        assert_eq!(article(&s, "faq-overdue-lv").await.unwrap().title, "Labots");
        assert!(matches!(
            article(&s, "faq-link-lv").await,
            Err(GovError::NotFound(_))
        ));
        // Writing it again brings it back, as new.
        let (_, created) = put_article(&s, &admin, "faq-link-lv", &edit).await.unwrap();
        assert!(created);

        // Bad input names the field.
        for (id, a, field) in [
            ("stats", edit.clone(), "id"),
            ("Bad Id", edit.clone(), "id"),
            ("ok", input("", "x"), "title"),
            ("ok", input("x", &"y".repeat(MAX_BODY + 1)), "body"),
            ("ok", input("x\u{7}", "y"), "title"),
        ] {
            match put_article(&s, &admin, id, &a).await {
                Err(GovError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{id}: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn votes_count_once_per_voter_least_helpful_first() {
        let (_dir, s) = store().await;
        let admin = Caller::Admin;
        for id in ["good", "bad", "quiet"] {
            put_article(&s, &admin, id, &input(id, "x")).await.unwrap();
        }
        vote(&s, "good", true, Voter::Browser("a")).await.unwrap();
        vote(&s, "good", true, Voter::Browser("b")).await.unwrap();
        vote(&s, "bad", true, Voter::Browser("a")).await.unwrap();
        // The same browser again: its vote changes, it is not added.
        vote(&s, "bad", false, Voter::Browser("a")).await.unwrap();
        vote(&s, "bad", false, Voter::Source("127.0.0.1"))
            .await
            .unwrap();
        vote(&s, "bad", false, Voter::Source("127.0.0.1"))
            .await
            .unwrap();
        assert!(matches!(
            vote(&s, "nope", true, Voter::Browser("a")).await,
            Err(GovError::NotFound(_))
        ));
        assert!(matches!(
            stats(&s, &Caller::Public).await,
            Err(GovError::Forbidden(_))
        ));
        let st = stats(&s, &admin).await.unwrap();
        let rows: Vec<(&str, i64, i64, Option<f64>)> = st
            .iter()
            .map(|r| (r.id.as_str(), r.yes, r.no, r.helpful_share))
            .collect();
        assert_eq!(
            rows,
            [
                ("bad", 0, 2, Some(0.0)),
                ("good", 2, 0, Some(1.0)),
                ("quiet", 0, 0, None)
            ]
        );
        let mine = votes_of(&s, Voter::Browser("a")).await.unwrap();
        assert_eq!(mine.get("bad"), Some(&false));
        assert_eq!(mine.get("good"), Some(&true));
        // A deleted article's votes go with it.
        delete_article(&s, &admin, "bad").await.unwrap();
        assert_eq!(stats(&s, &admin).await.unwrap().len(), 2);
    }
}
