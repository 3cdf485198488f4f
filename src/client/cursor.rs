//! Page cursors of `listInstances`: opaque to callers (hex of `<created_at>:<instance_id>`).

use crate::store::PageCursor;

pub fn encode_cursor(c: &PageCursor) -> String {
    format!("{}:{}", c.created_at, c.instance_id)
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `None` for anything `encode_cursor` did not make.
pub fn decode_cursor(text: &str) -> Option<PageCursor> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    let bytes = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    let plain = String::from_utf8(bytes).ok()?;
    let (at, id) = plain.split_once(':')?;
    Some(PageCursor {
        created_at: at.parse().ok()?,
        instance_id: id.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_and_garbage_does_not() {
        let c = PageCursor {
            created_at: 1_700_000_000_123,
            instance_id: "order:42:é".into(),
        };
        let back = decode_cursor(&encode_cursor(&c)).unwrap();
        assert_eq!(
            (back.created_at, back.instance_id),
            (c.created_at, c.instance_id)
        );
        for bad in ["", "zz", "abc", "3132", "78787878"] {
            assert!(decode_cursor(bad).is_none(), "{bad}");
        }
    }
}
