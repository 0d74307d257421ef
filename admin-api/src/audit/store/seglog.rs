//! The commit log of a SQLite audit file: the point at which a group of entries is durable.
//!
//! The writer thread writes each group — the rows it adds to the database, already chained —
//! as one frame at the end of the current segment and syncs it (`fdatasync`); only then are
//! the group's waiters answered. The rows reach the SQLite tables afterwards, on the indexer
//! thread, in larger transactions (`thread.rs`). A segment is removed once every group in it
//! is in the tables and a complete checkpoint put them on disk; on open, the groups the
//! tables lack are replayed from the segments before anything else runs. Why:
//! `docs/audit.md#on-a-sqlite-file-the-commit-log`.
//!
//! Files, beside the database file `audit.db`:
//! - `audit.db-seg-<first seq, 20 digits>`: a segment, `DAGRSEG1` then frames, preallocated
//!   with zeros to [`SEGMENT_MAX`] (a sync then changes no file-system metadata);
//! - `audit.db-seg-spare`: the next segment, prepared while the current one fills;
//! - `audit.db-seg.lock`: held (`flock`) by the one store that writes the log.
//!
//! A frame is `len: u32 LE`, `crc: u32 LE` (CRC-32C of the payload), then the payload:
//! the group's last seq, its recording time and head hash, then the four tables (`audit_log`,
//! `audit_subjects`, `audit_bulk`, `audit_daily`) as a row count and rows, each row an arity
//! and values (`0` null, `1` i64, `2` text, `3` bytes; lengths as `u32 LE`). The frames end
//! at a header of zeros followed only by zeros. A frame cut short or failing its CRC is a
//! group whose sync never returned — never acknowledged — only in the last segment and with
//! nothing but zeros after it: it is cut off. Anywhere else it is corruption, and the store
//! refuses to open.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::*;

/// A segment is closed, and a new one started, past this size; segments are preallocated
/// (zeros) to it.
pub(super) const SEGMENT_MAX: u64 = 16 << 20;
/// The largest frame read back (a group of `max_batch` entries of at most `list_limit`
/// subjects stays far below).
pub(super) const FRAME_MAX: usize = 1 << 30;
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
    /// The next segment, prepared once the current one is half full.
    spare: Option<Spare>,
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

/// Whether every byte is zero (the preallocated, never written part of a segment).
fn zeros(b: &[u8]) -> bool {
    b.iter().all(|&x| x == 0)
}

/// The groups a segment holds, in order, and where its frames end. A segment shorter than its
/// header, or whose header is zeros, holds nothing (its header is synced before any frame is
/// written into it). The frames end at the first header of zeros followed only by zeros (the
/// preallocated rest). A frame cut short or failing its checksum is a group whose sync never
/// returned only where nothing but zeros follows it, in the last segment (`last`): the
/// writer has at most one unsynced frame, at the end. The file is then cut back to the
/// frames before it. Anything else is corruption.
fn read_segment(path: &Path, last: bool) -> Result<Vec<Group>> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| io_error("cannot read the audit commit log", path, e))?;
    if bytes.len() < MAGIC.len() || zeros(&bytes[..MAGIC.len()]) {
        return Ok(Vec::new());
    }
    if &bytes[..MAGIC.len()] != MAGIC {
        return Err(corrupt(path, 0, "not a DAGR audit commit log"));
    }
    let mut at = MAGIC.len();
    let mut groups = Vec::new();
    while at < bytes.len() {
        let rest = &bytes[at..];
        if zeros(rest) {
            // The preallocated rest: the end of the frames.
            break;
        }
        let frame = (rest.len() >= 8).then(|| {
            let len = u32::from_le_bytes(rest[..4].try_into().unwrap_or_default()) as usize;
            let crc = u32::from_le_bytes(rest[4..8].try_into().unwrap_or_default());
            (len, crc)
        });
        let good = match frame {
            Some((len, crc)) if len > 0 && len <= FRAME_MAX && rest.len() - 8 >= len => {
                let payload = &rest[8..8 + len];
                (CRC.checksum(payload) == crc).then_some((len, payload))
            }
            _ => None,
        };
        let Some((len, payload)) = good else {
            // Torn only if nothing but zeros follows where the frame claims to end (or the
            // claim runs past the file).
            let after = frame.map_or(rest.len(), |(len, _)| 8usize.saturating_add(len));
            let torn = last && (after >= rest.len() || zeros(&rest[after..]));
            if !torn {
                return Err(corrupt(
                    path,
                    at as u64,
                    "a frame failing its length or checksum before the end of the log",
                ));
            }
            tracing::warn!(
                file = %path.display(),
                at,
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
            break;
        };
        groups.push(decode(payload).map_err(|e| corrupt(path, at as u64, e))?);
        at += 8 + len;
    }
    Ok(groups)
}

/// The segment files found when the log was opened: replayed, removed once the tables that
/// hold their groups are on disk ([`Log::forget_replayed`]).
#[derive(Debug, Default)]
pub(super) struct Replayed(Vec<PathBuf>);

impl Log {
    /// Open the commit log of `db` under `lock`: replay into the database, through `index`,
    /// every group its head `(seq, hash)` lacks — each must continue the chain — and start a
    /// new segment. Returns the log, the head after the replay, and the old segments, to be
    /// removed by [`Log::forget_replayed`] once the tables are durable.
    pub(super) fn recover(
        db: &Path,
        lock: File,
        head: (i64, String),
        mut index: impl FnMut(&[Group]) -> Result<()>,
    ) -> Result<(Log, (i64, String), Replayed)> {
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
        let spare = dir.join(format!("{stem}-seg-spare"));
        if spare.exists() {
            std::fs::remove_file(&spare)
                .map_err(|e| io_error("cannot remove the spare audit commit log", &spare, e))?;
        }
        let old: Vec<PathBuf> = found.into_iter().map(|(_, p)| p).collect();
        let path = dir.join(format!("{stem}-seg-{:020}", seq + 1));
        if old.contains(&path) {
            // The last segment starts where the new one would (it held nothing to keep):
            // it is replaced.
            std::fs::remove_file(&path)
                .map_err(|e| io_error("cannot remove the audit commit log", &path, e))?;
        }
        let file = create_segment(&dir, &path)?;
        let old = old.into_iter().filter(|p| *p != path).collect();
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
                spare: None,
            },
            (seq, hash),
            Replayed(old),
        ))
    }

    /// Remove the segments found at open: every group in them is in the tables, and the
    /// tables are on disk.
    pub(super) fn forget_replayed(&mut self, replayed: Replayed) -> Result<()> {
        for path in replayed.0 {
            std::fs::remove_file(&path)
                .map_err(|e| io_error("cannot remove the audit commit log", &path, e))?;
        }
        sync_dir(&self.dir)
    }

    /// Keep the segments found at open until the tables holding their groups (up to
    /// `head`) are on disk, like closed segments.
    pub(super) fn keep_replayed(&mut self, replayed: Replayed, head: i64) {
        for path in replayed.0 {
            self.sealed.push_back((path, head));
        }
    }

    /// Append a frame at the end of the frames and sync it. A failed write leaves the log
    /// as it was (the next frame is written at the same place; `Ok(true)` in the error);
    /// a failed sync does not (`false`: the kernel may have dropped the pages it could not
    /// write, and a retried sync would not say so), and the log must not be written again.
    pub(super) fn append(
        &mut self,
        frame: &[u8],
        last: i64,
    ) -> std::result::Result<(), (std::io::Error, bool)> {
        use std::os::unix::fs::FileExt;
        if let Err(e) = self.file.write_all_at(frame, self.len) {
            // Zeros back over what was written, so that no torn frame lies before the
            // next one; within the preallocated part the file keeps its size.
            let size = self.file.metadata().map(|m| m.len()).unwrap_or(0);
            let undone = if size > self.len + frame.len() as u64 {
                self.file.write_all_at(&vec![0; frame.len()], self.len)
            } else {
                self.file.set_len(self.len)
            };
            return Err((e, undone.is_ok()));
        }
        // `fdatasync`: within the preallocated part nothing but the data changes, so no
        // journal commit of the file system is waited for.
        if let Err(e) = self.file.sync_data() {
            return Err((e, false));
        }
        self.len += frame.len() as u64;
        self.last = last;
        if self.len >= SEGMENT_MAX / 2 && self.spare.is_none() {
            self.spare = Some(prepare_spare(&self.dir, &self.stem));
        }
        Ok(())
    }

    /// Past [`SEGMENT_MAX`], close the current segment and start one at `next` (the next
    /// seq): the spare prepared beside it, renamed, or a new one.
    pub(super) fn rotate(&mut self, next: i64) -> Result<()> {
        if self.len < SEGMENT_MAX || self.last == 0 {
            return Ok(());
        }
        let path = self.dir.join(format!("{}-seg-{next:020}", self.stem));
        let spare = self.spare.take().and_then(|h| h.join().ok());
        let file = match spare {
            Some(Ok((file, spare))) => {
                std::fs::rename(&spare, &path)
                    .map_err(|e| io_error("cannot start an audit commit log segment", &path, e))?;
                sync_dir(&self.dir)?;
                file
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "the spare audit commit log segment failed; creating one now");
                create_segment(&self.dir, &path)?
            }
            None => create_segment(&self.dir, &path)?,
        };
        let old = std::mem::replace(&mut self.path, path);
        self.file = file;
        self.sealed.push_back((old, self.last));
        self.len = MAGIC.len() as u64;
        self.last = 0;
        Ok(())
    }

    /// Remove the closed segments whose every group is durable in the database (`durable`:
    /// the last such seq). On `all`, the current one too when all of it is (a clean close).
    pub(super) fn drop_indexed(&mut self, durable: i64, all: bool) {
        while let Some((path, last)) = self.sealed.front() {
            if *last > durable {
                break;
            }
            if let Err(e) = std::fs::remove_file(path) {
                tracing::warn!(file = %path.display(), error = %e, "cannot remove an indexed audit commit log segment");
            }
            self.sealed.pop_front();
        }
        if all && self.sealed.is_empty() && self.last <= durable {
            for path in [
                Some(self.path.clone()),
                self.spare
                    .take()
                    .and_then(|h| h.join().ok())
                    .and_then(Result::ok)
                    .map(|(_, p)| p),
            ]
            .into_iter()
            .flatten()
            {
                if let Err(e) = std::fs::remove_file(&path) {
                    tracing::warn!(file = %path.display(), error = %e, "cannot remove the audit commit log");
                }
            }
        }
    }
}

/// The next segment, being prepared on a thread of its own.
type Spare = std::thread::JoinHandle<Result<(File, PathBuf)>>;

/// Prepare the next segment beside the current one (`{stem}-seg-spare`), so that rotating
/// is a rename.
fn prepare_spare(dir: &Path, stem: &str) -> Spare {
    let dir = dir.to_path_buf();
    let path = dir.join(format!("{stem}-seg-spare"));
    std::thread::Builder::new()
        .name("dagr-audit-segment".into())
        .spawn(move || {
            dagr_engine::pools::lower_priority(dagr_engine::pools::DEFAULT_NICE);
            let file = create_segment(&dir, &path)?;
            Ok((file, path))
        })
        .unwrap_or_else(|e| {
            let msg = e.to_string();
            std::thread::spawn(move || {
                Err(AuditStoreError::Unavailable(format!(
                    "cannot start the audit segment thread: {msg}"
                )))
            })
        })
}

/// Create the segment `path`: its header, then zeros up to [`SEGMENT_MAX`] (so that appends
/// write into allocated blocks and a sync changes no file system metadata), synced with its
/// folder. A file left half-made is removed.
fn create_segment(dir: &Path, path: &Path) -> Result<File> {
    let made = (|| -> std::io::Result<File> {
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(path)?;
        file.write_all(MAGIC)?;
        let chunk = vec![0u8; 1 << 20];
        let mut left = SEGMENT_MAX - MAGIC.len() as u64;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            file.write_all(&chunk[..n])?;
            left -= n as u64;
        }
        file.sync_all()?;
        Ok(file)
    })();
    match made {
        Ok(file) => {
            sync_dir(dir)?;
            Ok(file)
        }
        Err(e) => {
            let _ = std::fs::remove_file(path);
            Err(io_error("cannot create the audit commit log", path, e))
        }
    }
}
