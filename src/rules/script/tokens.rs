//! A small tokenizer of Rhai source for the source checks: words,
//! punctuation characters, and each string or character literal as one
//! token, with 1-based places; comments and white space are skipped. It
//! never fails: any text gives some tokens.

/// A word or punctuation character of Rhai source, with its 1-based place.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    pub(super) text: String,
    pub(super) line: usize,
    pub(super) column: usize,
}

/// The words and punctuation of Rhai source, skipping comments and white
/// space; a string or character literal is one token, `"` and its text.
pub(super) fn tokens(source: &str) -> Vec<Token> {
    let chars: Vec<char> = source.chars().collect();
    let mut found = Vec::new();
    let (mut i, mut line, mut column) = (0, 1, 1);
    let advance = |i: &mut usize, line: &mut usize, column: &mut usize| {
        if chars[*i] == '\n' {
            *line += 1;
            *column = 1;
        } else {
            *column += 1;
        }
        *i += 1;
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                advance(&mut i, &mut line, &mut column);
            }
        } else if c == '/' && next == Some('*') {
            advance(&mut i, &mut line, &mut column);
            advance(&mut i, &mut line, &mut column);
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                advance(&mut i, &mut line, &mut column);
            }
            for _ in 0..2 {
                if i < chars.len() {
                    advance(&mut i, &mut line, &mut column);
                }
            }
        } else if matches!(c, '"' | '\'' | '`') {
            // A string stands as one token: `"` and its raw text.
            let (start_line, start_column) = (line, column);
            let mut text = String::from('"');
            advance(&mut i, &mut line, &mut column);
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    advance(&mut i, &mut line, &mut column);
                }
                text.push(chars[i]);
                advance(&mut i, &mut line, &mut column);
            }
            if i < chars.len() {
                advance(&mut i, &mut line, &mut column);
            }
            found.push(Token {
                text,
                line: start_line,
                column: start_column,
            });
        } else if c.is_alphanumeric() || c == '_' {
            let (start_line, start_column) = (line, column);
            let mut word = String::new();
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                word.push(chars[i]);
                advance(&mut i, &mut line, &mut column);
            }
            found.push(Token {
                text: word,
                line: start_line,
                column: start_column,
            });
        } else {
            if !c.is_whitespace() {
                found.push(Token {
                    text: c.to_string(),
                    line,
                    column,
                });
            }
            advance(&mut i, &mut line, &mut column);
        }
    }
    found
}

/// Is the token a name (not a number, a string or punctuation)?
pub(super) fn is_word(t: &Token) -> bool {
    t.text.starts_with(|c: char| c.is_alphabetic() || c == '_')
}
