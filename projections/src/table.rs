//! Aligned text tables for terminals, measuring CJK names by display width.

use std::io::Write;

use unicode_width::UnicodeWidthStr;

#[derive(Debug)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    pub fn write(&self, out: &mut impl Write) -> std::io::Result<()> {
        self.write_with(out, |_, _| Ok(()))
    }

    /// Writes the table, calling `after(i, out)` after row `i` (for detail lines).
    pub fn write_with<W: Write>(
        &self,
        out: &mut W,
        mut after: impl FnMut(usize, &mut W) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.width()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(cell.width());
                }
            }
        }
        let line = |cells: &[String], out: &mut W| -> std::io::Result<()> {
            let mut text = String::new();
            for (i, cell) in cells.iter().enumerate() {
                if i > 0 {
                    text.push_str("  ");
                }
                text.push_str(cell);
                if i + 1 < cells.len() {
                    text.push_str(&" ".repeat(widths[i].saturating_sub(cell.width())));
                }
            }
            writeln!(out, "{}", text.trim_end())
        };
        line(&self.header, out)?;
        for (i, row) in self.rows.iter().enumerate() {
            line(row, out)?;
            after(i, out)?;
        }
        Ok(())
    }
}
