//! Text files read as UTF-8, whatever their encoding: bytes are decoded (or, for UTF-8,
//! validated) by `encoding_rs` a block at a time, so that readers see valid UTF-8 and learn
//! of a malformed byte only after every valid byte before it.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use encoding_rs::{DecoderResult, Encoding};

/// Bytes read from the file at a time.
const BLOCK: usize = 64 * 1024;

/// Why text could not be read.
#[derive(Debug)]
pub(super) enum TextError {
    /// Reading the file failed.
    Io(std::io::Error),
    /// Bytes that are not valid in the encoding (the message says which).
    Malformed(String),
}

/// A text file decoded to UTF-8 as it is read.
pub(super) struct TextInput {
    file: File,
    encoding: &'static Encoding,
    decoder: encoding_rs::Decoder,
    raw: Vec<u8>,
    raw_pos: usize,
    raw_len: usize,
    eof: bool,
    done: bool,
    pending: Option<String>,
}

impl TextInput {
    /// Open `path` as text in `encoding` (a byte-order mark, if any, wins and is dropped).
    pub(super) fn open(path: &Path, encoding: &'static Encoding) -> std::io::Result<Self> {
        Ok(Self {
            file: File::open(path)?,
            encoding,
            decoder: encoding.new_decoder(),
            raw: vec![0; BLOCK],
            raw_pos: 0,
            raw_len: 0,
            eof: false,
            done: false,
            pending: None,
        })
    }

    /// Append the next decoded text to `out`: `Ok(false)` at the end of the file. A
    /// malformed sequence is reported on the call after the text before it was returned.
    pub(super) fn read(&mut self, out: &mut Vec<u8>) -> Result<bool, TextError> {
        loop {
            if let Some(message) = self.pending.take() {
                self.done = true;
                return Err(TextError::Malformed(message));
            }
            if self.done {
                return Ok(false);
            }
            if self.raw_pos == self.raw_len && !self.eof {
                self.raw_len = loop {
                    match self.file.read(&mut self.raw) {
                        Ok(n) => break n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(TextError::Io(e)),
                    }
                };
                self.raw_pos = 0;
                self.eof = self.raw_len == 0;
            }
            let src = &self.raw[self.raw_pos..self.raw_len];
            let room = self
                .decoder
                .max_utf8_buffer_length_without_replacement(src.len())
                .unwrap_or(src.len() * 3 + 16)
                .max(16);
            let start = out.len();
            out.resize(start + room, 0);
            let (result, read, written) =
                self.decoder
                    .decode_to_utf8_without_replacement(src, &mut out[start..], self.eof);
            out.truncate(start + written);
            self.raw_pos += read;
            match result {
                DecoderResult::InputEmpty => {
                    if self.eof {
                        self.done = true;
                    }
                    if written > 0 {
                        return Ok(true);
                    }
                }
                DecoderResult::OutputFull => {
                    if written > 0 {
                        return Ok(true);
                    }
                }
                DecoderResult::Malformed(bad, extra) => {
                    let end = self.raw_pos.saturating_sub(usize::from(extra));
                    let begin = end.saturating_sub(usize::from(bad));
                    let bytes: Vec<String> = self.raw[begin..end]
                        .iter()
                        .map(|b| format!("{b:02X}"))
                        .collect();
                    let name = self.encoding.name();
                    let mut message = format!(
                        "invalid {name}: byte{} {} cannot be decoded",
                        if bytes.len() == 1 { "" } else { "s" },
                        if bytes.is_empty() {
                            "at the end of the file".to_owned()
                        } else {
                            bytes.join(" ")
                        }
                    );
                    if self.encoding == encoding_rs::UTF_8 {
                        message.push_str(
                            "; if the file is not UTF-8, give its encoding (e.g. windows-1257)",
                        );
                    }
                    self.pending = Some(message);
                    if written > 0 {
                        return Ok(true);
                    }
                }
            }
        }
    }
}

/// [`TextInput`] as a [`Read`] of UTF-8 bytes (for arrow-csv's schema inference).
pub(super) struct TextRead {
    input: TextInput,
    buf: Vec<u8>,
    pos: usize,
}

impl TextRead {
    pub(super) fn new(input: TextInput) -> Self {
        Self {
            input,
            buf: Vec::new(),
            pos: 0,
        }
    }
}

impl Read for TextRead {
    fn read(&mut self, dst: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
            match self.input.read(&mut self.buf) {
                Ok(true) => {}
                Ok(false) => return Ok(0),
                Err(TextError::Io(e)) => return Err(e),
                Err(TextError::Malformed(m)) => {
                    return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, m));
                }
            }
        }
        let n = dst.len().min(self.buf.len() - self.pos);
        dst[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
