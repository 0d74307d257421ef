//! The commit log of a SQLite audit file: the point at which a group of entries is durable.
//!
//! The writer thread appends each group — the rows it adds to the database, already chained —
//! as one frame to the current segment file and syncs it (`fdatasync`); only then are the
//! group's waiters answered. The rows reach the SQLite tables afterwards, on the indexer
//! thread, in larger transactions (`thread.rs`). A segment is removed once every group in it
//! is in the database; on open, the groups the database lacks are replayed from the segments
//! before anything else runs. Why: `docs/audit.md#the-commit-log`.
//!
//! Files, beside the database file `audit.db`:
//! - `audit.db-seg-<first seq, 20 digits>`: a segment, `DAGRSEG1` then frames;
//! - `audit.db-seg.lock`: held (`flock`) by the one store that writes the log.
//!
//! A frame is `len: u32 LE`, `crc: u32 LE` (CRC-32C of the payload), then the payload:
//! the group's last seq, its recording time and head hash, then the four tables (`audit_log`,
//! `audit_subjects`, `audit_bulk`, `audit_daily`) as a row count and rows, each row an arity
//! and values (`0` null, `1` i64, `2` text, `3` bytes; lengths as `u32 LE`). A frame cut short
//! or failing its CRC at the end of the last segment is a group whose sync never returned —
//! never acknowledged — and is cut off; anywhere else it is corruption, and the store refuses
//! to open.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::*;

/// A segment is closed, and a new one started, past this size.
pub(super) const SEGMENT_MAX: u64 = 64 << 20;
/// The largest frame read back (a group of `max_batch` entries of at most `list_limit`
/// subjects stays far below).
const FRAME_MAX: usize = 1 << 30;
const MAGIC: &[u8; 8] = b"DAGRSEG1";
/// CRC-32C, sliced by 16 (a group of 30 point records is some 40 KiB).
const CRC: crc::Crc<u32, crc::Table<16>> = crc::Crc::<u32, crc::Table<16>>::new(&crc::CRC_32_ISCSI);

fn corrupt(path: &Path, at: u64, what: impl fmt::Display) -> AuditStoreError {
    AuditStoreError::Corrupt(format!(
        "audit commit log {} at byte {at}: {what}",
        path.display()
    ))
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> AuditStoreError {
    AuditStoreError::Unavailable(format!("{what} {}: {e}", path.display()))
}

// ---- frames ------------------------------------------------------------------------------------

/// Encode a chained group as a frame (length, CRC, payload).
pub(super) fn encode(g: &Group) -> Vec<u8> {
    // The header's 8 bytes first, filled in at the end: one buffer, no copy.
    let mut p = Vec::with_capacity(256 + g.log.len() * 1536);
    p.extend_from_slice(&[0; 8]);
    p.extend_from_slice(&g.seq.to_le_bytes());
    p.extend_from_slice(&g.recorded.to_le_bytes());
    put_bytes(&mut p, g.hash.as_bytes());
    for table in [&g.log, &g.subjects, &g.bulk, &g.daily] {
        p.extend_from_slice(&(table.len() as u32).to_le_bytes());
        for row in table {
            p.extend_from_slice(&(row.len() as u16).to_le_bytes());
            for v in row {
                match v {
                    Val::OI(None) | Val::OS(None) => p.push(0),
                    Val::I(x) | Val::OI(Some(x)) => {
                        p.push(1);
                        p.extend_from_slice(&x.to_le_bytes());
                    }
                    Val::S(s) | Val::OS(Some(s)) => {
                        p.push(2);
                        put_bytes(&mut p, s.as_bytes());
                    }
                    Val::B(b) => {
                        p.push(3);
                        put_bytes(&mut p, b);
                    }
                }
            }
        }
    }
    let len = (p.len() - 8) as u32;
    let crc = CRC.checksum(&p[8..]);
    p[..4].copy_from_slice(&len.to_le_bytes());
    p[4..8].copy_from_slice(&crc.to_le_bytes());
    p
}

fn put_bytes(p: &mut Vec<u8>, b: &[u8]) {
    p.extend_from_slice(&(b.len() as u32).to_le_bytes());
    p.extend_from_slice(b);
}

/// A bounds-checked reader of a payload.
struct Cursor<'a> {
    buf: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        if self.buf.len() < n {
            return Err(format!("payload ends {n} bytes early"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn u16(&mut self) -> std::result::Result<u16, String> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().unwrap_or_default(),
        ))
    }

    fn u32(&mut self) -> std::result::Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().unwrap_or_default(),
        ))
    }

    fn i64(&mut self) -> std::result::Result<i64, String> {
        Ok(i64::from_le_bytes(
            self.take(8)?.try_into().unwrap_or_default(),
        ))
    }

    fn bytes(&mut self) -> std::result::Result<&'a [u8], String> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    fn text(&mut self) -> std::result::Result<String, String> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| "text is not UTF-8".to_owned())
    }
}

/// Decode a frame's payload (its CRC checked) back into the group's rows and head.
pub(super) fn decode(payload: &[u8]) -> std::result::Result<Group, String> {
    let mut c = Cursor { buf: payload };
    let mut g = Group {
        seq: c.i64()?,
        recorded: c.i64()?,
        hash: c.text()?,
        ..Group::default()
    };
    for table in [&mut g.log, &mut g.subjects, &mut g.bulk, &mut g.daily] {
        let rows = c.u32()? as usize;
        // Each row takes at least its arity: a count beyond what is left is corruption.
        if rows > c.buf.len() / 2 {
            return Err(format!("{rows} rows in {} bytes", c.buf.len()));
        }
        table.reserve(rows);
        for _ in 0..rows {
            let arity = c.u16()? as usize;
            let mut row = Vec::with_capacity(arity.min(c.buf.len()));
            for _ in 0..arity {
                row.push(match c.take(1)?[0] {
                    0 => Val::OS(None),
                    1 => Val::I(c.i64()?),
                    2 => Val::S(c.text()?),
                    3 => Val::B(Bytes::copy_from_slice(c.bytes()?)),
                    t => return Err(format!("unknown value tag {t}")),
                });
            }
            table.push(row);
        }
    }
    if !c.buf.is_empty() {
        return Err(format!("{} bytes after the last table", c.buf.len()));
    }
    if g.log.is_empty() {
        return Err("a group without entries".into());
    }
    Ok(g)
}

/// The first seq of a decoded group and the hash it chains from.
pub(super) fn group_start(g: &Group) -> Option<(i64, &str)> {
    let row = g.log.first()?;
    let seq = match row.first()? {
        Val::I(s) => *s,
        _ => return None,
    };
    match row.get(LOG_COLUMNS.len())? {
        Val::S(prev) => Some((seq, prev)),
        _ => None,
    }
}

// ---- segments ----------------------------------------------------------------------------------

/// The segments of one database file and the lock that makes one store their writer.
#[derive(Debug)]
pub(super) struct Log {
    dir: PathBuf,
    stem: String,
    _lock: File,
    file: File,
    path: PathBuf,
    len: u64,
    /// The last seq in the current segment (0 while it holds none).
    last: i64,
    /// Closed segments and the last seq each holds.
    sealed: VecDeque<(PathBuf, i64)>,
}

/// Where the commit log of the database file `db` lives: its directory and the file name.
fn parts(db: &Path) -> (PathBuf, String) {
    let dir = db
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let stem = db.file_name().map_or_else(
        || "audit.db".to_owned(),
        |n| n.to_string_lossy().into_owned(),
    );
    (dir, stem)
}

/// Take the writer's lock of `db`'s commit log: `None` when another store holds it (another
/// process, or a store of this one not yet closed).
pub(super) fn lock(db: &Path) -> Result<Option<File>> {
    let (dir, stem) = parts(db);
    let path = dir.join(format!("{stem}-seg.lock"));
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| io_error("cannot open the audit log lock", &path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(io_error("cannot lock the audit log lock", &path, e))
        }
    }
}

/// The segment files of `db`, by first seq.
fn segments(dir: &Path, stem: &str) -> Result<Vec<(i64, PathBuf)>> {
    let prefix = format!("{stem}-seg-");
    let mut found = Vec::new();
    let entries =
        std::fs::read_dir(dir).map_err(|e| io_error("cannot list the audit log folder", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_error("cannot list the audit log folder", dir, e))?;
        let name = entry.file_name();
        let Some(first) = name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|n| n.parse::<i64>().ok())
        else {
            continue;
        };
        found.push((first, entry.path()));
    }
    found.sort();
    Ok(found)
}

/// Sync a directory, so that a file created or removed in it stays so after a crash.
fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error("cannot sync the audit log folder", dir, e))
}

/// The groups a segment holds, in order. A frame cut short or failing its CRC ends the
/// segment: allowed only in the last one (`last`), where the file is cut back to the frames
/// before it.
fn read_segment(path: &Path, last: bool) -> Result<Vec<Group>> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| io_error("cannot read the audit commit log", path, e))?;
    if bytes.len() < MAGIC.len() {
        // Created, not yet synced with its header: it holds nothing acknowledged.
        if last {
            return Ok(Vec::new());
        }
        return Err(corrupt(path, 0, "no header"));
    }
    if &bytes[..MAGIC.len()] != MAGIC {
        return Err(corrupt(path, 0, "not a DAGR audit commit log"));
    }
    let mut at = MAGIC.len();
    let mut groups = Vec::new();
    while at < bytes.len() {
        let torn = |why: String| -> Result<Vec<Group>> {
            if !last {
                return Err(corrupt(path, at as u64, why));
            }
            tracing::warn!(
                file = %path.display(),
                at,
                reason = %why,
                "the audit commit log ends in a group whose sync never completed (never \
                 acknowledged); cutting it off"
            );
            OpenOptions::new()
                .write(true)
                .open(path)
                .and_then(|f| {
                    f.set_len(at as u64)?;
                    f.sync_all()
                })
                .map_err(|e| io_error("cannot cut the audit commit log", path, e))?;
            Ok(Vec::new())
        };
        if bytes.len() - at < 8 {
            torn(format!("{} bytes of a frame header", bytes.len() - at))?;
            break;
        }
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap_or_default()) as usize;
        let crc = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap_or_default());
        if len > FRAME_MAX || bytes.len() - at - 8 < len {
            torn(format!("a frame of {len} bytes past the end"))?;
            break;
        }
        let payload = &bytes[at + 8..at + 8 + len];
        if CRC.checksum(payload) != crc {
            torn("a frame failing its checksum".into())?;
            break;
        }
        groups.push(decode(payload).map_err(|e| corrupt(path, at as u64, e))?);
        at += 8 + len;
    }
    Ok(groups)
}

impl Log {
    /// Open the commit log of `db` under `lock`: replay into the database, through `index`,
    /// every group its head `(seq, hash)` lacks — each must continue the chain — then remove
    /// the segments and start a new one. Returns the log and the head after the replay.
    pub(super) fn recover(
        db: &Path,
        lock: File,
        head: (i64, String),
        mut index: impl FnMut(&[Group]) -> Result<()>,
    ) -> Result<(Log, (i64, String))> {
        let (dir, stem) = parts(db);
        let found = segments(&dir, &stem)?;
        let (mut seq, mut hash) = head;
        let mut replayed = 0usize;
        for (i, (_, path)) in found.iter().enumerate() {
            let groups = read_segment(path, i + 1 == found.len())?;
            let mut todo = Vec::new();
            for g in groups {
                if g.seq <= seq {
                    continue;
                }
                let Some((first, prev)) = group_start(&g) else {
                    return Err(corrupt(path, 0, "a group without a first entry"));
                };
                if first != seq + 1 || prev != hash {
                    return Err(AuditStoreError::Corrupt(format!(
                        "audit commit log {}: its group of entries {first}..{} does not \
                         continue the database's chain at entry {seq}",
                        path.display(),
                        g.seq
                    )));
                }
                seq = g.seq;
                hash = g.hash.clone();
                todo.push(g);
            }
            if !todo.is_empty() {
                replayed += todo.iter().map(|g| g.log.len()).sum::<usize>();
                index(&todo)?;
            }
        }
        if replayed > 0 {
            tracing::info!(
                entries = replayed,
                head = seq,
                "audit log: entries of the commit log replayed into the database"
            );
        }
        for (_, path) in &found {
            std::fs::remove_file(path)
                .map_err(|e| io_error("cannot remove the audit commit log", path, e))?;
        }
        let (file, path) = create_segment(&dir, &stem, seq + 1)?;
        Ok((
            Log {
                dir,
                stem,
                _lock: lock,
                file,
                path,
                len: MAGIC.len() as u64,
                last: 0,
                sealed: VecDeque::new(),
            },
            (seq, hash),
        ))
    }

    /// Append a frame and sync it. After a failed write the segment is cut back to where it
    /// was (`Ok(false)` from the cut: it failed too, and the log must not be written again).
    pub(super) fn append(
        &mut self,
        frame: &[u8],
        last: i64,
    ) -> std::result::Result<(), (std::io::Error, bool)> {
        let written = self.file.write_all(frame).and_then(|()| {
            // `fdatasync`: the file's size is data too, so the frame is durable with it.
            self.file.sync_data()
        });
        match written {
            Ok(()) => {
                self.len += frame.len() as u64;
                self.last = last;
                Ok(())
            }
            Err(e) => {
                let cut = self
                    .file
                    .set_len(self.len)
                    .and_then(|()| self.file.sync_data())
                    .is_ok();
                Err((e, cut))
            }
        }
    }

    /// Past [`SEGMENT_MAX`], close the current segment and start one at `next` (the next seq).
    pub(super) fn rotate(&mut self, next: i64) -> Result<()> {
        if self.len < SEGMENT_MAX || self.last == 0 {
            return Ok(());
        }
        let (file, path) = create_segment(&self.dir, &self.stem, next)?;
        let old = std::mem::replace(&mut self.path, path);
        self.file = file;
        self.sealed.push_back((old, self.last));
        self.len = MAGIC.len() as u64;
        self.last = 0;
        Ok(())
    }

    /// Remove the closed segments whose every group is in the database (`indexed`: the last
    /// seq there). On `all`, the current one too when all of it is (a clean close).
    pub(super) fn drop_indexed(&mut self, indexed: i64, all: bool) {
        while let Some((path, last)) = self.sealed.front() {
            if *last > indexed {
                break;
            }
            if let Err(e) = std::fs::remove_file(path) {
                tracing::warn!(file = %path.display(), error = %e, "cannot remove an indexed audit commit log segment");
            }
            self.sealed.pop_front();
        }
        if all
            && self.sealed.is_empty()
            && self.last <= indexed
            && let Err(e) = std::fs::remove_file(&self.path)
        {
            tracing::warn!(file = %self.path.display(), error = %e, "cannot remove the audit commit log");
        }
    }
}

/// Create the segment that starts at `first`, with its header, synced with its folder.
fn create_segment(dir: &Path, stem: &str, first: i64) -> Result<(File, PathBuf)> {
    let path = dir.join(format!("{stem}-seg-{first:020}"));
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .map_err(|e| io_error("cannot create the audit commit log", &path, e))?;
    file.write_all(MAGIC)
        .and_then(|()| file.sync_all())
        .map_err(|e| io_error("cannot write the audit commit log", &path, e))?;
    sync_dir(dir)?;
    Ok((file, path))
}
