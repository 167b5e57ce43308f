//! Text tables for the terminal: left-aligned columns two spaces apart, a header line first,
//! trailing blanks trimmed.

/// The table as text, one `\n`-terminated line per row.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let padded: Vec<String> = cells.zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(&mut headers.iter().copied());
    for row in rows {
        out += &line(&mut row.iter().map(String::as_str));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_as_wide_as_their_widest_cell_and_lines_carry_no_trailing_blanks() {
        let rows = vec![vec!["1".to_string(), "long cell".into(), "".into()], vec!["22".into(), "x".into(), "".into()]];
        assert_eq!(render(&["ID", "NAME", "NOTE"], &rows), "ID  NAME       NOTE\n1   long cell\n22  x\n");
    }
}
