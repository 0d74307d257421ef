//! The canonical body of an entry, its chain links, and the SQL helpers every part of the store shares.

use super::*;

// ---- the body --------------------------------------------------------------------------------

/// The canonical body of an entry: serialised with `serde_json` in this field order, without
/// whitespace. The hash covers exactly this text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Body {
    pub(super) v: u32,
    pub(super) seq: i64,
    pub(super) kind: String,
    pub(super) time: i64,
    pub(super) recorded: i64,
    pub(super) role: Option<String>,
    pub(super) organisation: Option<String>,
    pub(super) system: Option<String>,
    pub(super) user: Option<String>,
    pub(super) token: Option<String>,
    pub(super) purpose: Option<String>,
    pub(super) channel: Option<String>,
    pub(super) dataset: Option<String>,
    pub(super) version: Option<i64>,
    pub(super) attributes: Vec<String>,
    pub(super) agreements: Vec<String>,
    pub(super) request_id: Option<String>,
    pub(super) query_sha256: Option<String>,
    pub(super) rows: u64,
    pub(super) subject_count: u64,
    pub(super) subjects: Option<Vec<String>>,
    pub(super) subjects_sha256: Option<String>,
    pub(super) dict_id: Option<i64>,
    pub(super) dict_hash: Option<String>,
    pub(super) reporter: Option<String>,
    pub(super) transaction_id: Option<String>,
    pub(super) access_record: Option<i64>,
}

impl Body {
    pub(super) fn canonical(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// `SHA-256(prev_hash || body)`, hex: the chain link.
pub(super) fn chain_hash(prev: &str, body: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(body.as_bytes());
    to_hex(&h.finalize())
}

/// Hex SHA-256 of a text.
pub fn sha256_hex(text: &str) -> String {
    to_hex(&Sha256::digest(text.as_bytes()))
}

/// `SHA-256(prev_hash || id || ":" || code)`, hex: the subject dictionary's chain link.
pub(super) fn dict_link(prev: &str, id: i64, code: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(id.to_string().as_bytes());
    h.update(b":");
    h.update(code.as_bytes());
    to_hex(&h.finalize())
}

/// How a subject value is stored: as it is, or — when longer than [`MAX_SUBJECT_BYTES`] or
/// holding NUL, which could fail an index or a text column — as `sha256:<hex>` of the value.
/// The citizen view looks subjects up the same way.
pub fn subject_code(value: &str) -> std::borrow::Cow<'_, str> {
    if value.len() > MAX_SUBJECT_BYTES || value.contains('\0') {
        std::borrow::Cow::Owned(format!("sha256:{}", sha256_hex(value)))
    } else {
        std::borrow::Cow::Borrowed(value)
    }
}

/// A bound value.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Val {
    I(i64),
    OI(Option<i64>),
    S(String),
    OS(Option<String>),
    B(Bytes),
}

impl fmt::Display for Val {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Val::I(v) | Val::OI(Some(v)) => write!(f, "{v}"),
            Val::S(s) | Val::OS(Some(s)) => write!(f, "{s:?}"),
            Val::OI(None) | Val::OS(None) => f.write_str("NULL"),
            Val::B(b) => write!(f, "{} bytes", b.len()),
        }
    }
}

#[derive(Clone, Copy)]
pub(super) enum Ty {
    I,
    OI,
    S,
    OS,
}

/// The columns of `audit_log` that repeat the body, in insert order.
pub(super) const LOG_COLUMNS: [(&str, Ty); 21] = [
    ("seq", Ty::I),
    ("event_time", Ty::I),
    ("recorded_at", Ty::I),
    ("kind", Ty::S),
    ("organisation", Ty::OS),
    ("system_id", Ty::OS),
    ("token", Ty::OS),
    ("purpose", Ty::OS),
    ("channel", Ty::OS),
    ("dataset", Ty::OS),
    ("version", Ty::OI),
    ("attributes", Ty::S),
    ("agreements", Ty::S),
    ("request_id", Ty::OS),
    ("query_hash", Ty::OS),
    ("row_count", Ty::I),
    ("subject_count", Ty::I),
    ("bulk", Ty::I),
    ("reporter", Ty::OS),
    ("transaction_id", Ty::OS),
    ("access_ref", Ty::OI),
];

pub(super) fn json_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

/// The column values the body implies, in [`LOG_COLUMNS`] order.
pub(super) fn body_columns(b: &Body) -> Vec<Val> {
    vec![
        Val::I(b.seq),
        Val::I(b.time),
        Val::I(b.recorded),
        Val::S(b.kind.clone()),
        Val::OS(b.organisation.clone()),
        Val::OS(b.system.clone()),
        Val::OS(b.token.clone()),
        Val::OS(b.purpose.clone()),
        Val::OS(b.channel.clone()),
        Val::OS(b.dataset.clone()),
        Val::OI(b.version),
        Val::S(json_list(&b.attributes)),
        Val::S(json_list(&b.agreements)),
        Val::OS(b.request_id.clone()),
        Val::OS(b.query_sha256.clone()),
        Val::I(b.rows as i64),
        Val::I(b.subject_count as i64),
        Val::I(i64::from(b.subjects_sha256.is_some())),
        Val::OS(b.reporter.clone()),
        Val::OS(b.transaction_id.clone()),
        Val::OI(b.access_record),
    ]
}

/// The stored column values, in [`LOG_COLUMNS`] order.
pub(super) fn row_columns(r: &AnyRow) -> Result<Vec<Val>> {
    LOG_COLUMNS
        .iter()
        .map(|(name, ty)| {
            Ok(match ty {
                Ty::I => Val::I(r.try_get(*name)?),
                Ty::OI => Val::OI(r.try_get(*name)?),
                Ty::S => Val::S(r.try_get(*name)?),
                Ty::OS => Val::OS(r.try_get(*name)?),
            })
        })
        .collect()
}

// ---- SQL helpers -------------------------------------------------------------------------------

pub(super) type Query<'q> = sqlx::query::Query<'q, Any, AnyArguments<'q>>;

pub(super) fn bind<'q>(q: Query<'q>, v: &'q Val) -> Query<'q> {
    match v {
        Val::I(x) => q.bind(*x),
        Val::OI(x) => q.bind(*x),
        Val::S(s) => q.bind(s.as_str()),
        Val::OS(s) => q.bind(s.as_deref()),
        Val::B(b) => q.bind(&b[..]),
    }
}

/// The placeholder of the `n`th (1-based) argument: `$n` for PostgreSQL; a positional `?`
/// for SQLite, because sqlx looks every `$n` up by name there, which costs time quadratic in
/// the number of parameters of a statement (a multi-row insert has thousands).
pub(super) fn placeholder(backend: Backend, n: usize) -> String {
    match backend {
        Backend::Sqlite => "?".to_owned(),
        Backend::Postgres => format!("${n}"),
    }
}

/// Dynamically built SQL; arguments are added in the order of their placeholders.
pub(super) struct Sql {
    pub(super) backend: Backend,
    pub(super) text: String,
    pub(super) args: Vec<Val>,
}

impl Sql {
    pub(super) fn new(backend: Backend, text: &str) -> Self {
        Sql {
            backend,
            text: text.to_owned(),
            args: Vec::new(),
        }
    }

    /// Add an argument; returns its placeholder, to be appended next.
    pub(super) fn arg(&mut self, v: Val) -> String {
        self.args.push(v);
        placeholder(self.backend, self.args.len())
    }

    /// Append `sql`, with each `?` replaced by the next argument's placeholder.
    pub(super) fn push(&mut self, sql: &str, args: impl IntoIterator<Item = Val>) {
        let mut args = args.into_iter();
        for (i, part) in sql.split('?').enumerate() {
            if i > 0 {
                let p = self.arg(args.next().unwrap_or(Val::OS(None)));
                self.text.push_str(&p);
            }
            self.text.push_str(part);
        }
    }

    /// `(?, ?, ...)` of a list of values.
    pub(super) fn list(&mut self, vals: impl IntoIterator<Item = Val>) -> String {
        let ps: Vec<String> = vals.into_iter().map(|v| self.arg(v)).collect();
        format!("({})", ps.join(", "))
    }

    pub(super) fn query(&self) -> Query<'_> {
        self.args.iter().fold(sqlx::query(&self.text), bind)
    }
}

/// Multi-row `INSERT INTO {into} VALUES (...), ... {tail}`, in statements of a power-of-two
/// number of rows (so that a handful of statement texts are prepared and cached).
pub(super) async fn insert_rows(
    conn: &mut AnyConnection,
    backend: Backend,
    into: &str,
    tail: &str,
    rows: &[Vec<Val>],
) -> Result<(), sqlx::Error> {
    let Some(arity) = rows.first().map(Vec::len) else {
        return Ok(());
    };
    let cap = prev_power_of_two((MAX_PARAMS / arity.max(1)).clamp(1, MAX_ROWS_PER_STATEMENT));
    let mut rest = rows;
    while !rest.is_empty() {
        // Small batches (what group commit under point lookups gives) in one statement;
        // bigger ones in power-of-two chunks, so that few statement shapes are prepared.
        let n = if rest.len() <= EXACT_ROWS.min(cap) {
            rest.len()
        } else {
            prev_power_of_two(rest.len().min(cap))
        };
        let (chunk, tail_rows) = rest.split_at(n);
        let mut text = format!("INSERT INTO {into} VALUES ");
        let mut p = 0;
        for i in 0..n {
            if i > 0 {
                text.push_str(", ");
            }
            text.push('(');
            for j in 0..arity {
                if j > 0 {
                    text.push_str(", ");
                }
                p += 1;
                text.push_str(&placeholder(backend, p));
            }
            text.push(')');
        }
        text.push_str(tail);
        let q = chunk
            .iter()
            .flatten()
            .fold(sqlx::query(&text), |q, v| bind(q, v));
        q.execute(&mut *conn).await?;
        rest = tail_rows;
    }
    Ok(())
}

/// Row counts up to which a multi-row insert is one statement of exactly that many rows.
pub(super) const EXACT_ROWS: usize = 32;

pub(super) fn prev_power_of_two(n: usize) -> usize {
    if n <= 1 {
        1
    } else {
        1 << (usize::BITS - 1 - n.leading_zeros())
    }
}

/// The chain head.
#[derive(Debug, Clone)]
pub(super) struct Head {
    pub(super) seq: i64,
    pub(super) hash: String,
    pub(super) recorded_at: i64,
    pub(super) anchor: Anchor,
}

/// The retention anchor: the last entry removed by expiry (seq 0 and the genesis hash when
/// none was).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Anchor {
    pub(super) seq: i64,
    pub(super) hash: String,
    pub(super) prev_hash: String,
    pub(super) body: String,
}

pub(super) fn head_row(r: &AnyRow) -> Result<Head> {
    Ok(Head {
        seq: r.try_get("seq")?,
        hash: r.try_get("hash")?,
        recorded_at: r.try_get("recorded_at")?,
        anchor: Anchor {
            seq: r.try_get("anchor_seq")?,
            hash: r.try_get("anchor_hash")?,
            prev_hash: r.try_get("anchor_prev_hash")?,
            body: r.try_get("anchor_body")?,
        },
    })
}

pub(super) const HEAD_SELECT: &str = "SELECT seq, hash, recorded_at, anchor_seq, anchor_hash, \
     anchor_prev_hash, anchor_body FROM audit_head WHERE id = 1";

/// Read the head inside a write transaction, locking it: PostgreSQL `FOR UPDATE`; SQLite
/// takes the database's write lock with a no-op update first, so that the transaction
/// never has to upgrade a read snapshot (which could fail with `SQLITE_BUSY`).
pub(super) async fn lock_head(conn: &mut AnyConnection, backend: Backend) -> Result<Head> {
    let row =
        match backend {
            // One statement (one hand-off to sqlx's SQLite thread): the no-op update takes the
            // write lock and returns the head.
            Backend::Sqlite => sqlx::query(
                "UPDATE audit_head SET seq = seq WHERE id = 1 RETURNING seq, hash, recorded_at, \
                 anchor_seq, anchor_hash, anchor_prev_hash, anchor_body",
            )
            .fetch_one(&mut *conn)
            .await?,
            Backend::Postgres => {
                sqlx::query(&format!("{HEAD_SELECT} FOR UPDATE"))
                    .fetch_one(&mut *conn)
                    .await?
            }
        };
    head_row(&row)
}

pub(super) async fn read_head(pool: &AnyPool) -> Result<Head> {
    head_row(&sqlx::query(HEAD_SELECT).fetch_one(pool).await?)
}

/// The subject dictionary's head: its last id and that row's hash.
pub(super) async fn read_dict_head(conn: &mut AnyConnection) -> Result<(i64, String)> {
    let r = sqlx::query("SELECT last_id, hash FROM audit_dict_head WHERE id = 1")
        .fetch_one(&mut *conn)
        .await?;
    Ok((r.try_get("last_id")?, r.try_get("hash")?))
}

/// Lock the subject dictionary's head in a write transaction (see [`lock_head`]).
pub(super) async fn lock_dict_head(
    conn: &mut AnyConnection,
    backend: Backend,
) -> Result<(i64, String)> {
    match backend {
        Backend::Sqlite => {
            sqlx::query("UPDATE audit_dict_head SET last_id = last_id WHERE id = 1")
                .execute(&mut *conn)
                .await?;
            read_dict_head(conn).await
        }
        Backend::Postgres => {
            let r =
                sqlx::query("SELECT last_id, hash FROM audit_dict_head WHERE id = 1 FOR UPDATE")
                    .fetch_one(&mut *conn)
                    .await?;
            Ok((r.try_get("last_id")?, r.try_get("hash")?))
        }
    }
}
