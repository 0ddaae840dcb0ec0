//! The step name (`-n/--step-name`) checked before anything runs.
//!
//! in-toto 3.1.0 itself accepts any string as a step name: neither its
//! `Link` nor its layout's steps validate `name`; its tools only put it into
//! file names (`<step>.<keyid8>.link`, `.<step>.<keyid8>.link-unfinished`).
//! What it can be is therefore what a file name can be, for every file
//! tracelink writes for the step (`link::STEP_FILE_SUFFIXES`): not empty,
//! not `.` or `..` (the link would be a hidden file and `record start`'s
//! preliminary link would start with `..`), no `/` (in-toto-run would write
//! into a subdirectory, tracelink refuses names with a separator), no NUL
//! (no file name can hold it), and short enough that the longest of those
//! names, with its temporary name, fits in 255 bytes (NAME_MAX on Linux
//! filesystems).

use crate::link;

/// The longest file name (in bytes) Linux filesystems take.
pub const NAME_MAX: usize = 255;

/// The keyid prefix length in file names (`link::file_name`).
const KEYID_CHARS: usize = 8;

/// The longest step name whose every file name fits in `NAME_MAX`.
pub fn max_len() -> usize {
    let overhead = longest_file_name("");
    NAME_MAX.saturating_sub(overhead)
}

/// The longest file name tracelink may write for `step`.
fn longest_file_name(step: &str) -> usize {
    let keyid = "0".repeat(KEYID_CHARS);
    link::step_file_names(step, &keyid)
        .iter()
        .map(String::len)
        .max()
        .unwrap_or(0)
}

/// Why `step` cannot be a step name, if it cannot.
pub fn check(step: &str) -> Result<(), String> {
    let shown = crate::text::printable(step);
    if step.is_empty() {
        return Err("the step name (-n/--step-name) is empty".into());
    }
    if step == "." || step == ".." {
        return Err(format!(
            "the step name (-n/--step-name) {step:?} is not a name: the link would be a hidden file ({})",
            link::file_name(step, "<keyid>")
        ));
    }
    if step.contains('/') {
        return Err(format!(
            "the step name (-n/--step-name) {shown:?} contains `/`: it names files in the metadata directory ({}), and a path separator would put them in another directory",
            crate::text::printable(&link::file_name(step, "<keyid>"))
        ));
    }
    if step.contains('\0') {
        return Err(format!(
            "the step name (-n/--step-name) {shown:?} contains a NUL byte, which no file name can hold"
        ));
    }
    let longest = longest_file_name(step);
    if longest > NAME_MAX {
        return Err(format!(
            "the step name (-n/--step-name) is {} bytes long; at most {} bytes fit: the longest file tracelink writes for a step ({}) must fit in the {NAME_MAX}-byte limit of a file name, and it would be {longest} bytes",
            step.len(),
            max_len(),
            longest_example(),
        ));
    }
    Ok(())
}

/// The longest file name pattern, for the message.
fn longest_example() -> String {
    let keyid = "k".repeat(KEYID_CHARS);
    let step = "\u{1}";
    link::step_file_names(step, &keyid)
        .into_iter()
        .max_by_key(String::len)
        .unwrap_or_default()
        .replace(step, "<step>")
        .replace(&keyid, "<keyid8>")
        .replace(&format!("{:016x}", u64::MAX), "<16 hex>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_cannot_be_a_file_name() {
        for bad in ["", ".", "..", "a/b", "/", "a\0b"] {
            assert!(check(bad).is_err(), "{bad:?}");
        }
        for good in ["build", "a.b", "...", "-x", "ümlaut", ".hidden-ish", "a b"] {
            assert_eq!(check(good), Ok(()), "{good:?}");
        }
    }

    #[test]
    fn the_longest_allowed_name_fits_every_file_and_one_more_byte_does_not() {
        let max = max_len();
        // `.` + step + `.<keyid8>.link.attest-runtime-trace.json` + `.<16 hex>.tmp`
        assert_eq!(max, 255 - 1 - 40 - 21);
        let step = "s".repeat(max);
        assert_eq!(check(&step), Ok(()));
        for name in link::step_file_names(&step, &"f".repeat(64)) {
            assert!(name.len() <= NAME_MAX, "{} bytes", name.len());
        }
        let err = check(&"s".repeat(max + 1)).unwrap_err();
        assert!(err.contains(&format!("is {} bytes long", max + 1)), "{err}");
        assert!(err.contains(&format!("at most {max} bytes")), "{err}");
        assert!(err.contains("255"), "{err}");
        assert!(
            err.contains(".<step>.<keyid8>.link.attest-runtime-trace.json."),
            "{err}"
        );
    }

    #[test]
    fn multibyte_names_are_measured_in_bytes() {
        let max = max_len();
        let step = "é".repeat(max / 2 + 1);
        assert!(check(&step).is_err());
    }
}
