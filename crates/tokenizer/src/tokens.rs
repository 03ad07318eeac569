//! Token text in DPLM-2's format and FASTA files of token records.
//!
//! DPLM-2 (`pdb_datamodule.py`: `struct_ids_to_seq` / `struct_seq_to_ids`) writes a chain's
//! structure tokens as zero-padded 4-digit ids joined by commas, `0123,4095,0007`, and stores
//! one record per chain in `struct_seq.fasta`. Its FASTA writer (biotite) wraps bodies at 80
//! characters, possibly inside a number, so the reader here joins a record's lines without a
//! separator before splitting on commas, as biotite does. The writer puts each body on one line.
//!
//! ```
//! use protforge_tokenizer::tokens::{format_tokens, parse_fasta, fasta_string, TokenRecord};
//! assert_eq!(format_tokens(&[123, 4095, 7]), "0123,4095,0007");
//! let recs = vec![TokenRecord { id: "1abc_A".into(), tokens: vec![0, 8191] }];
//! let text = fasta_string(&recs);
//! assert_eq!(text, ">1abc_A\n0000,8191\n");
//! assert_eq!(parse_fasta(&text, "<text>", 8192).unwrap(), recs);
//! ```

use crate::TokenizerError;
use std::path::Path;

/// Label used as the file name of in-memory token text in errors.
pub const TEXT_LABEL: &str = "<text>";

/// One FASTA record: an id and its structure tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Record id (the header up to the first whitespace).
    pub id: String,
    /// Token ids, one per residue.
    pub tokens: Vec<u16>,
}

/// DPLM-2 token text: zero-padded 4-digit ids joined by commas (`0123,4095`).
#[must_use]
pub fn format_tokens(tokens: &[u16]) -> String {
    let mut out = String::with_capacity(tokens.len() * 5);
    for (k, t) in tokens.iter().enumerate() {
        if k > 0 {
            out.push(',');
        }
        out.push_str(&format!("{t:04}"));
    }
    out
}

/// Parse one token: ASCII digits (surrounding spaces allowed), value below `n_codes`.
fn parse_token(raw: &str, n_codes: usize) -> Result<u16, String> {
    let t = raw.trim();
    if t.is_empty() {
        return Err("empty token".to_string());
    }
    if !t.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!("'{t}' is not a number"));
    }
    let value = t.trim_start_matches('0');
    match value.parse::<u64>() {
        _ if value.is_empty() => Ok(0),
        Ok(v) if (v as u128) < n_codes as u128 => u16::try_from(v).map_err(|_| format!("id {t} is out of range")),
        _ => Err(format!("id {t} is out of range (0-{})", n_codes.saturating_sub(1))),
    }
}

/// Parse one record body `0123,4095,…` given as its lines (`(line number, text)`), joined
/// without separator. Errors name `file`, the line where the bad token starts, the record and
/// the token's 1-based position.
fn parse_body(lines: &[(usize, &str)], header_line: usize, record: &str, file: &str, n_codes: usize) -> Result<Vec<u16>, TokenizerError> {
    let mut body = String::new();
    // (byte offset where a line starts in `body`, its line number)
    let mut starts: Vec<(usize, usize)> = Vec::with_capacity(lines.len());
    for (no, text) in lines {
        let t = text.trim();
        if !t.is_empty() {
            starts.push((body.len(), *no));
            body.push_str(t);
        }
    }
    if body.is_empty() {
        return Err(TokenizerError::EmptyRecord { file: file.to_string(), line: header_line, record: record.to_string() });
    }
    let line_of = |offset: usize| starts.iter().rev().find(|(s, _)| *s <= offset).map_or(header_line, |(_, no)| *no);
    let mut tokens = Vec::with_capacity(body.len() / 5 + 1);
    let mut offset = 0usize;
    for (k, raw) in body.split(',').enumerate() {
        let t = parse_token(raw, n_codes).map_err(|reason| TokenizerError::BadToken {
            file: file.to_string(),
            line: line_of(offset),
            record: record.to_string(),
            token: k + 1,
            reason,
        })?;
        tokens.push(t);
        offset += raw.len() + 1;
    }
    Ok(tokens)
}

/// Parse a single line of token text (no FASTA header) for record `record`.
///
/// # Errors
/// [`TokenizerError::BadToken`] (non-numeric, id ≥ `n_codes`, empty token) or
/// [`TokenizerError::EmptyRecord`], naming [`TEXT_LABEL`], the record and the position.
pub fn parse_tokens(text: &str, record: &str, n_codes: usize) -> Result<Vec<u16>, TokenizerError> {
    parse_body(&[(1, text)], 1, record, TEXT_LABEL, n_codes)
}

/// A record being read: header line, id and body lines `(line number, text)`.
struct Pending<'a> {
    line: usize,
    id: String,
    body: Vec<(usize, &'a str)>,
}

/// Parse FASTA text holding token records; `file` names the source in errors.
///
/// Blank lines are ignored. The id is the header up to the first whitespace.
///
/// # Errors
/// [`TokenizerError::BadFasta`] (no records, text before the first header, empty id),
/// [`TokenizerError::EmptyRecord`], [`TokenizerError::BadToken`].
pub fn parse_fasta(text: &str, file: &str, n_codes: usize) -> Result<Vec<TokenRecord>, TokenizerError> {
    let bad = |line: usize, reason: &str| TokenizerError::BadFasta { file: file.to_string(), line, reason: reason.to_string() };
    let mut records = Vec::new();
    let mut current: Option<Pending<'_>> = None;
    let finish = |cur: Option<Pending<'_>>, records: &mut Vec<TokenRecord>| -> Result<(), TokenizerError> {
        if let Some(p) = cur {
            let tokens = parse_body(&p.body, p.line, &p.id, file, n_codes)?;
            records.push(TokenRecord { id: p.id, tokens });
        }
        Ok(())
    };
    for (i, line) in text.lines().enumerate() {
        let no = i + 1;
        if let Some(header) = line.strip_prefix('>') {
            finish(current.take(), &mut records)?;
            let id = header.split_whitespace().next().unwrap_or("");
            if id.is_empty() {
                return Err(bad(no, "record header '>' without a name"));
            }
            current = Some(Pending { line: no, id: id.to_string(), body: Vec::new() });
        } else if line.trim().is_empty() {
            continue;
        } else if let Some(p) = current.as_mut() {
            p.body.push((no, line));
        } else {
            return Err(bad(no, "token text before the first '>' header"));
        }
    }
    finish(current.take(), &mut records)?;
    if records.is_empty() {
        return Err(bad(1, "no FASTA records (expected '>name' lines followed by token text)"));
    }
    Ok(records)
}

/// Read a FASTA file of token records.
///
/// # Errors
/// [`TokenizerError::Io`] naming the file; as [`parse_fasta`] otherwise (with the file's path).
pub fn read_fasta(path: &Path, n_codes: usize) -> Result<Vec<TokenRecord>, TokenizerError> {
    let bytes = std::fs::read(path).map_err(|source| TokenizerError::Io { path: path.to_path_buf(), source })?;
    let label = path.display().to_string();
    let text = std::str::from_utf8(&bytes)
        .map_err(|e| TokenizerError::BadFasta { file: label.clone(), line: 1, reason: format!("not UTF-8 text ({e})") })?;
    parse_fasta(text, &label, n_codes)
}

/// FASTA text of `records`: `>id` then the DPLM-2 token text on one line.
#[must_use]
pub fn fasta_string(records: &[TokenRecord]) -> String {
    let mut out = String::new();
    for r in records {
        out.push('>');
        out.push_str(&r.id);
        out.push('\n');
        out.push_str(&format_tokens(&r.tokens));
        out.push('\n');
    }
    out
}

/// Write `records` as FASTA atomically (temporary file + rename).
///
/// # Errors
/// [`TokenizerError::Io`] naming the file.
pub fn write_fasta(path: &Path, records: &[TokenRecord]) -> Result<(), TokenizerError> {
    protforge_structure::io::write_file_atomic(path, fasta_string(records).as_bytes())
        .map_err(|source| TokenizerError::Io { path: path.to_path_buf(), source })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_of_every_id_width() {
        let tokens: Vec<u16> = vec![0, 7, 42, 123, 999, 1000, 4095, 8191];
        let text = format_tokens(&tokens);
        assert_eq!(text, "0000,0007,0042,0123,0999,1000,4095,8191");
        assert_eq!(parse_tokens(&text, "r", 8192).unwrap(), tokens);
        let recs = vec![
            TokenRecord { id: "a_A".into(), tokens: tokens.clone() },
            TokenRecord { id: "b_B".into(), tokens: vec![5] },
        ];
        let fasta = fasta_string(&recs);
        assert_eq!(parse_fasta(&fasta, TEXT_LABEL, 8192).unwrap(), recs);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.fasta");
        write_fasta(&path, &recs).unwrap();
        assert_eq!(read_fasta(&path, 8192).unwrap(), recs);
    }

    #[test]
    fn wrapped_bodies_join_like_biotite() {
        // Wrapped inside a number and after a comma; a description after the id; blank lines.
        let text = ">x_A some description\n0001,00\n02,\n0003\n\n>y\n8191\n";
        let recs = parse_fasta(text, "f.fasta", 8192).unwrap();
        assert_eq!(recs[0], TokenRecord { id: "x_A".into(), tokens: vec![1, 2, 3] });
        assert_eq!(recs[1].tokens, vec![8191]);
    }

    #[test]
    fn bad_text_gives_one_line_errors_with_record_and_position() {
        let cases: &[(&str, &str)] = &[
            (">r1\n0001,0002\n>r2\n0001,00x2,0003\n", "f.fasta, line 4: record 'r2', token 2: '00x2' is not a number"),
            (">r1\n0001,8192\n", "f.fasta, line 2: record 'r1', token 2: id 8192 is out of range (0-8191)"),
            (">r1\n0001,\n0002,\n99999999999999999999\n", "f.fasta, line 4: record 'r1', token 3: id 99999999999999999999 is out of range (0-8191)"),
            (">r1\n0001,,0002\n", "f.fasta, line 2: record 'r1', token 2: empty token"),
            (">r1\n0001,-2\n", "token 2: '-2' is not a number"),
            (">r1\n>r2\n0001\n", "f.fasta, line 1: record 'r1' is empty (no tokens)"),
            (">r1\n0001\n>last\n\n", "f.fasta, line 3: record 'last' is empty"),
            ("0001\n>r1\n0001\n", "f.fasta, line 1: token text before the first '>' header"),
            ("> \n0001\n", "line 1: record header '>' without a name"),
            ("\n\n", "no FASTA records"),
        ];
        for (text, want) in cases {
            let err = parse_fasta(text, "f.fasta", 8192).unwrap_err().to_string();
            assert!(err.contains(want), "{text:?}: got '{err}', want '{want}'");
            assert!(!err.contains('\n'), "multi-line error: {err}");
        }
        assert!(parse_tokens("1,2,3", "r", 3).unwrap_err().to_string().contains("token 3: id 3 is out of range (0-2)"));
        assert!(parse_tokens("", "r", 4).unwrap_err().to_string().contains("record 'r' is empty"));
        let dir = tempfile::tempdir().unwrap();
        let err = read_fasta(&dir.path().join("missing.fasta"), 8192).unwrap_err().to_string();
        assert!(err.contains("missing.fasta"), "{err}");
    }
}
