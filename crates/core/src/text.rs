//! How what JS hands over becomes the text of an event's `data`.
//!
//! - A Buffer (or typed array) is UTF-8: invalid sequences become U+FFFD, as a browser's
//!   decoder would show them anyway, so nothing that is not text reaches the wire.
//! - A batch of JS strings comes as one joined string and the UTF-16 length of each (one
//!   conversion for the lot instead of one per item). Cut back into items here, each is what
//!   converting it alone would have given: a surrogate pair that only the joining made whole
//!   is two lone surrogates again, each U+FFFD.

use std::borrow::Cow;

/// `data` given as bytes.
pub fn text_of_bytes(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// The UTF-16 lengths do not add up to the joined string's.
#[derive(Debug, PartialEq, Eq)]
pub struct LengthMismatch;

/// Cuts `joined` into the items whose UTF-16 lengths are `lengths`, in order.
pub fn split_utf16_lengths<'a>(
    joined: &'a str,
    lengths: &[u32],
) -> Result<Vec<Cow<'a, str>>, LengthMismatch> {
    let mut items = Vec::with_capacity(lengths.len());
    let total: u64 = lengths.iter().map(|&l| u64::from(l)).sum();
    if total == joined.len() as u64 {
        // As many bytes as UTF-16 units: every character is ASCII (any other takes more bytes
        // than units), so the lengths are byte offsets.
        let mut start = 0;
        for &length in lengths {
            let end = start + length as usize;
            items.push(Cow::Borrowed(&joined[start..end]));
            start = end;
        }
        return Ok(items);
    }
    let mut chars = joined.char_indices().peekable();
    // A supplementary character cut in two by a boundary: its second half opens the next item.
    let mut carried_half = false;
    for &length in lengths {
        if length == 0 {
            // Takes nothing, not even a carried half.
            items.push(Cow::Borrowed(""));
            continue;
        }
        let mut units = carried_half as u32;
        let start = chars.peek().map_or(joined.len(), |&(at, _)| at);
        let mut end = start;
        let mut split_here = false;
        while units < length {
            let Some(&(at, c)) = chars.peek() else {
                return Err(LengthMismatch);
            };
            let width = c.len_utf16() as u32;
            if units + width > length {
                // Only a two-unit character can overshoot, by one unit.
                split_here = true;
                chars.next();
                end = at;
                break;
            }
            chars.next();
            units += width;
            end = at + c.len_utf8();
        }
        let body = &joined[start..end];
        let item = match (carried_half, split_here) {
            (false, false) => Cow::Borrowed(body),
            (carried, split) => {
                let mut owned = String::with_capacity(body.len() + 6);
                if carried {
                    owned.push(char::REPLACEMENT_CHARACTER);
                }
                owned.push_str(body);
                if split {
                    owned.push(char::REPLACEMENT_CHARACTER);
                }
                Cow::Owned(owned)
            }
        };
        carried_half = split_here;
        items.push(item);
    }
    if carried_half || chars.next().is_some() {
        return Err(LengthMismatch);
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16_lengths(items: &[&str]) -> Vec<u32> {
        items
            .iter()
            .map(|s| s.encode_utf16().count() as u32)
            .collect()
    }

    #[test]
    fn items_come_back_as_they_were() {
        let items = ["a", "", "héllo", "😀x", "日本語", ""];
        let joined = items.concat();
        let split = split_utf16_lengths(&joined, &utf16_lengths(&items)).unwrap();
        assert_eq!(split, items);
        assert!(split.iter().all(|c| matches!(c, Cow::Borrowed(_))));
    }

    #[test]
    fn a_pair_made_whole_only_by_joining_is_two_replacement_characters() {
        // JS: "a\uD83D" + "\uDE00b" joins into "a😀b"; alone, each half is a lone surrogate.
        let split = split_utf16_lengths("a😀b", &[2, 2]).unwrap();
        assert_eq!(split, ["a\u{FFFD}", "\u{FFFD}b"]);
        let split = split_utf16_lengths("😀", &[1, 0, 1]).unwrap();
        assert_eq!(split, ["\u{FFFD}", "", "\u{FFFD}"]);
    }

    #[test]
    fn lengths_that_do_not_add_up_are_refused() {
        assert_eq!(split_utf16_lengths("abc", &[1, 1]), Err(LengthMismatch));
        assert_eq!(split_utf16_lengths("abc", &[2, 2]), Err(LengthMismatch));
        assert_eq!(split_utf16_lengths("😀", &[1]), Err(LengthMismatch));
    }

    #[test]
    fn bytes_become_text_with_invalid_sequences_replaced() {
        assert_eq!(text_of_bytes(b"ok"), "ok");
        assert_eq!(text_of_bytes(&[b'a', 0xff, b'b']), "a\u{FFFD}b");
    }
}
