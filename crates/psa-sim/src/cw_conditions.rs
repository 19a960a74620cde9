//! The ConnectWise `conditions` language (docs/psa.md §1.4): lexer, parser and evaluator over JSON rows.
//!
//! Grammar (keywords and field paths are case-insensitive; `and` binds tighter than `or`):
//! ```text
//! expr    := and { "or" and }
//! and     := primary { "and" primary }
//! primary := "(" expr ")" | cmp
//! cmp     := path op literal
//!          | path ["not"] "in" "(" literal { "," literal } ")"
//! op      := "=" | "!=" | "<>" | "<" | "<=" | ">" | ">=" | ["not"] "contains" | ["not"] "like"
//! literal := "…" | '…' | number | true | false | null | "[" datetime "]"
//! ```
//! Semantics: datetimes compare as instants, numbers numerically, strings case-insensitively; `like` takes `*` and
//! `%` as "any run of characters" and `[…]` as a one-character set (so `[[]` is a literal `[`). A comparison against a
//! JSON null is false, except `= null` (true) and `!= null` (false).

use std::cmp::Ordering;

use jiff::Timestamp;
use serde_json::Value;

pub(crate) use crate::cw_schema::{
    FieldType, Schema, CUSTOM_FIELD_SCHEMA, NO_CHILD_SCHEMA, TICKET_SCHEMA,
};
use crate::eval::{cmp_ci, parse_datetime, scalar_text, value_at};

/// The server's own validation text for a malformed literal (quoted in docs/psa.md §1.4).
pub const BAD_LITERAL_MESSAGE: &str = "String values should be enclosed with double or single quotes; DateTime values \
should be enclosed in square brackets; numbers should consist of only digits, and optionally a decimal point and a \
negation sign; boolean values should be indicated with the keywords true or false; null values should be indicated by \
the keyword null.";

/// Nesting depth beyond which a condition string is rejected (keeps the recursive parser's stack bounded).
const MAX_DEPTH: usize = 64;

/// Why a condition string was rejected.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ConditionError {
    /// A literal that is not a quoted string, number, boolean, null or `[datetime]`.
    BadLiteral(String),
    /// A field path the resource does not have.
    UnknownField(String),
    /// Anything else: missing operator, unbalanced parentheses, trailing tokens…
    Syntax(String),
}

/// A literal on the right-hand side of a comparison.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Literal {
    Str { raw: String },
    Num(f64),
    Bool(bool),
    Null,
    DateTime(Timestamp),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
    NotContains,
    Like,
    NotLike,
}

/// A parsed condition tree.
#[derive(Clone, Debug)]
pub(crate) enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cmp {
        path: Vec<&'static str>,
        ty: FieldType,
        op: Op,
        lit: Literal,
        /// Compiled pattern for `like` / `not like`.
        pattern: Option<Pattern>,
    },
    In {
        path: Vec<&'static str>,
        ty: FieldType,
        negated: bool,
        list: Vec<Literal>,
    },
}

/// Parses a condition string. Blank input means "no condition" (`Ok(None)`).
pub(crate) fn parse(input: &str, schema: &Schema) -> Result<Option<Expr>, ConditionError> {
    let tokens = lex(input)?;
    if tokens.is_empty() {
        return Ok(None);
    }
    let mut p = Parser {
        tokens,
        pos: 0,
        schema,
        depth: 0,
    };
    let expr = p.parse_or()?;
    if let Some(t) = p.peek() {
        return Err(ConditionError::Syntax(format!(
            "unexpected {} after a complete condition",
            t.describe()
        )));
    }
    Ok(Some(expr))
}

impl Expr {
    /// Whether the condition reads nothing but the row's `id`.
    pub(crate) fn reads_only_id(&self) -> bool {
        match self {
            Expr::And(a, b) | Expr::Or(a, b) => a.reads_only_id() && b.reads_only_id(),
            Expr::Cmp { path, .. } | Expr::In { path, .. } => path.as_slice() == ["id"],
        }
    }

    /// Whether `row` satisfies the condition.
    pub(crate) fn matches(&self, row: &Value) -> bool {
        match self {
            Expr::And(a, b) => a.matches(row) && b.matches(row),
            Expr::Or(a, b) => a.matches(row) || b.matches(row),
            Expr::Cmp {
                path,
                ty,
                op,
                lit,
                pattern,
            } => eval_cmp(value_at(row, path), *ty, *op, lit, pattern.as_ref()),
            Expr::In {
                path,
                ty,
                negated,
                list,
            } => {
                let v = value_at(row, path);
                if *negated {
                    !v.is_null() && !list.iter().any(|l| eval_cmp(v, *ty, Op::Eq, l, None))
                } else {
                    list.iter().any(|l| eval_cmp(v, *ty, Op::Eq, l, None))
                }
            }
        }
    }

    /// Whether any item of the array at `array_key` satisfies the condition (`customFieldConditions`).
    pub(crate) fn matches_any_item(&self, row: &Value, array_key: &str) -> bool {
        row.get(array_key)
            .and_then(Value::as_array)
            .is_some_and(|items| items.iter().any(|item| self.matches(item)))
    }
}

fn eval_cmp(v: &Value, ty: FieldType, op: Op, lit: &Literal, pattern: Option<&Pattern>) -> bool {
    if let Literal::Null = lit {
        return match op {
            Op::Eq => v.is_null(),
            Op::Ne => !v.is_null(),
            _ => false,
        };
    }
    if v.is_null() {
        return false;
    }
    match op {
        Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge => {
            let Some(ord) = compare(v, ty, lit) else {
                return false;
            };
            match op {
                Op::Eq => ord == Ordering::Equal,
                Op::Ne => ord != Ordering::Equal,
                Op::Lt => ord == Ordering::Less,
                Op::Le => ord != Ordering::Greater,
                Op::Gt => ord == Ordering::Greater,
                _ => ord != Ordering::Less,
            }
        }
        Op::Contains | Op::NotContains => {
            let (Some(hay), Some(needle)) = (scalar_text(v), literal_text(lit)) else {
                return false;
            };
            let found = hay.to_lowercase().contains(&needle.to_lowercase());
            found == (op == Op::Contains)
        }
        Op::Like | Op::NotLike => {
            let (Some(text), Some(pattern)) = (scalar_text(v), pattern) else {
                return false;
            };
            pattern.matches(&text) == (op == Op::Like)
        }
    }
}

fn literal_text(lit: &Literal) -> Option<String> {
    match lit {
        Literal::Str { raw } => Some(raw.clone()),
        Literal::Num(n) => Some(format_number(*n)),
        Literal::Bool(b) => Some(b.to_string()),
        Literal::Null | Literal::DateTime(_) => None,
    }
}

fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

/// Orders the row value against a (non-null) literal; `None` when they cannot be compared.
fn compare(v: &Value, ty: FieldType, lit: &Literal) -> Option<Ordering> {
    match lit {
        Literal::Null => None,
        Literal::DateTime(t) => parse_datetime(v.as_str()?).map(|x| x.cmp(t)),
        Literal::Num(n) => {
            let x = match v {
                Value::Number(x) => x.as_f64()?,
                Value::String(s) => s.trim().parse::<f64>().ok()?,
                _ => return None,
            };
            x.partial_cmp(n)
        }
        Literal::Bool(b) => match v {
            Value::Bool(x) => Some(x.cmp(b)),
            Value::String(s) => parse_bool(s).map(|x| x.cmp(b)),
            _ => None,
        },
        Literal::Str { raw } => match v {
            Value::String(s) => {
                if ty == FieldType::Datetime {
                    if let (Some(a), Some(b)) = (parse_datetime(s), parse_datetime(raw)) {
                        return Some(a.cmp(&b));
                    }
                }
                Some(cmp_ci(s, raw))
            }
            Value::Number(x) => x.as_f64()?.partial_cmp(&raw.trim().parse::<f64>().ok()?),
            Value::Bool(x) => parse_bool(raw).map(|b| x.cmp(&b)),
            _ => None,
        },
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// A compiled `like` pattern, matched case-insensitively.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Pattern(Vec<PatTok>);

#[derive(Clone, Debug, PartialEq)]
enum PatTok {
    Any,
    Char(char),
    Set(Vec<char>),
}

impl Pattern {
    pub(crate) fn compile(src: &str) -> Pattern {
        let chars: Vec<char> = src.chars().flat_map(char::to_lowercase).collect();
        let mut toks = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '*' | '%' => {
                    if toks.last() != Some(&PatTok::Any) {
                        toks.push(PatTok::Any);
                    }
                }
                '[' => {
                    // `[…]` is a one-character set; the first character may be `]`-free `[` (as in `[[]`).
                    match chars[i + 1..].iter().skip(1).position(|&c| c == ']') {
                        Some(off) => {
                            let end = i + 2 + off;
                            toks.push(PatTok::Set(chars[i + 1..end].to_vec()));
                            i = end;
                        }
                        None => toks.push(PatTok::Char('[')),
                    }
                }
                c => toks.push(PatTok::Char(c)),
            }
            i += 1;
        }
        Pattern(toks)
    }

    pub(crate) fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().flat_map(char::to_lowercase).collect();
        let toks = &self.0;
        // Classic glob matching with single-star backtracking.
        let (mut t, mut p) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            match toks.get(p) {
                Some(PatTok::Any) => {
                    star = Some((p, t));
                    p += 1;
                }
                Some(PatTok::Char(c)) if *c == text[t] => {
                    p += 1;
                    t += 1;
                }
                Some(PatTok::Set(set)) if set.contains(&text[t]) => {
                    p += 1;
                    t += 1;
                }
                _ => match star {
                    Some((sp, st)) => {
                        p = sp + 1;
                        t = st + 1;
                        star = Some((sp, st + 1));
                    }
                    None => return false,
                },
            }
        }
        toks[p..].iter().all(|tok| *tok == PatTok::Any)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Lexer

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    LParen,
    RParen,
    Comma,
    Sym(&'static str),
    /// A bare word: keyword, field path, or something invalid (classified by the parser).
    Word(String),
    Str(String),
    Number(f64),
    DateTime(String),
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::Comma => "','".into(),
            Tok::Sym(s) => format!("'{s}'"),
            Tok::Word(w) => format!("'{w}'"),
            Tok::Str(s) => format!("string \"{s}\""),
            Tok::Number(n) => format!("number {n}"),
            Tok::DateTime(d) => format!("datetime [{d}]"),
        }
    }

    fn is_keyword(&self, kw: &str) -> bool {
        matches!(self, Tok::Word(w) if w.eq_ignore_ascii_case(kw))
    }
}

const KEYWORDS: [&str; 9] = [
    "and", "or", "not", "contains", "like", "in", "null", "true", "false",
];

fn is_number(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let mut parts = digits.splitn(2, '.');
    let int = parts.next().unwrap_or("");
    let frac = parts.next();
    !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

fn lex(input: &str) -> Result<Vec<Tok>, ConditionError> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1;
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            '=' => {
                out.push(Tok::Sym("="));
                i += 1;
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                out.push(Tok::Sym("!="));
                i += 2;
            }
            '<' | '>' => {
                let next = chars.get(i + 1).copied();
                let sym = match (c, next) {
                    ('<', Some('=')) => "<=",
                    ('<', Some('>')) => "!=",
                    ('>', Some('=')) => ">=",
                    ('<', _) => "<",
                    _ => ">",
                };
                i += if sym.len() == 2 { 2 } else { 1 };
                out.push(Tok::Sym(sym));
            }
            '"' | '\'' => {
                let end = chars[i + 1..].iter().position(|&x| x == c).ok_or_else(|| {
                    ConditionError::BadLiteral(format!("unterminated string starting at {i}"))
                })?;
                out.push(Tok::Str(chars[i + 1..i + 1 + end].iter().collect()));
                i += end + 2;
            }
            '[' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&x| x == ']')
                    .ok_or_else(|| {
                        ConditionError::BadLiteral(format!("unterminated datetime starting at {i}"))
                    })?;
                out.push(Tok::DateTime(chars[i + 1..i + 1 + end].iter().collect()));
                i += end + 2;
            }
            _ => {
                let start = i;
                while i < chars.len()
                    && !chars[i].is_whitespace()
                    && !"()=!<>,\"'[]".contains(chars[i])
                {
                    i += 1;
                }
                if i == start {
                    return Err(ConditionError::Syntax(format!(
                        "unexpected character '{c}' at {i}"
                    )));
                }
                let word: String = chars[start..i].iter().collect();
                if is_number(&word) {
                    let n = word
                        .parse::<f64>()
                        .map_err(|_| ConditionError::BadLiteral(word.clone()))?;
                    out.push(Tok::Number(n));
                } else {
                    out.push(Tok::Word(word));
                }
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------------------------
// Parser

struct Parser<'s> {
    tokens: Vec<Tok>,
    pos: usize,
    schema: &'s Schema,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn eat_keyword(&mut self, kw: &str) -> bool {
        if self.peek().is_some_and(|t| t.is_keyword(kw)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn parse_or(&mut self) -> Result<Expr, ConditionError> {
        let mut left = self.parse_and()?;
        while self.eat_keyword("or") {
            let right = self.parse_and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_and(&mut self) -> Result<Expr, ConditionError> {
        let mut left = self.parse_primary()?;
        while self.eat_keyword("and") {
            let right = self.parse_primary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_primary(&mut self) -> Result<Expr, ConditionError> {
        if self.peek() == Some(&Tok::LParen) {
            self.pos += 1;
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err(ConditionError::Syntax(
                    "conditions are nested too deeply".into(),
                ));
            }
            let inner = self.parse_or()?;
            self.depth -= 1;
            return match self.next() {
                Some(Tok::RParen) => Ok(inner),
                Some(t) => Err(ConditionError::Syntax(format!(
                    "expected ')' but found {}",
                    t.describe()
                ))),
                None => Err(ConditionError::Syntax("missing ')'".into())),
            };
        }
        self.parse_cmp()
    }

    fn parse_cmp(&mut self) -> Result<Expr, ConditionError> {
        let raw_path = match self.next() {
            Some(Tok::Word(w)) if !KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(&w)) => w,
            Some(t) => {
                return Err(ConditionError::Syntax(format!(
                    "expected a field name but found {}",
                    t.describe()
                )))
            }
            None => {
                return Err(ConditionError::Syntax(
                    "expected a field name but the conditions ended".into(),
                ))
            }
        };
        let (canonical, ty) = self
            .schema
            .resolve(&raw_path)
            .ok_or_else(|| ConditionError::UnknownField(raw_path.clone()))?;
        let path: Vec<&'static str> = canonical.split('/').collect();

        let negated = self.eat_keyword("not");
        let op = match self.next() {
            Some(Tok::Sym(s)) if !negated => match s {
                "=" => Op::Eq,
                "!=" => Op::Ne,
                "<" => Op::Lt,
                "<=" => Op::Le,
                ">" => Op::Gt,
                _ => Op::Ge,
            },
            Some(t) if t.is_keyword("contains") => {
                if negated {
                    Op::NotContains
                } else {
                    Op::Contains
                }
            }
            Some(t) if t.is_keyword("like") => {
                if negated {
                    Op::NotLike
                } else {
                    Op::Like
                }
            }
            Some(t) if t.is_keyword("in") => {
                let list = self.parse_list()?;
                return Ok(Expr::In {
                    path,
                    ty,
                    negated,
                    list,
                });
            }
            Some(t) => {
                return Err(ConditionError::Syntax(format!(
                    "expected an operator after '{raw_path}' but found {}",
                    t.describe()
                )))
            }
            None => {
                return Err(ConditionError::Syntax(format!(
                    "expected an operator after '{raw_path}'"
                )))
            }
        };
        let lit = self.parse_literal()?;
        let pattern = match (&op, &lit) {
            (Op::Like | Op::NotLike, l) => literal_text(l).map(|s| Pattern::compile(&s)),
            _ => None,
        };
        Ok(Expr::Cmp {
            path,
            ty,
            op,
            lit,
            pattern,
        })
    }

    fn parse_list(&mut self) -> Result<Vec<Literal>, ConditionError> {
        match self.next() {
            Some(Tok::LParen) => {}
            _ => return Err(ConditionError::Syntax("expected '(' after 'in'".into())),
        }
        let mut list = vec![self.parse_literal()?];
        loop {
            match self.next() {
                Some(Tok::Comma) => list.push(self.parse_literal()?),
                Some(Tok::RParen) => return Ok(list),
                Some(t) => {
                    return Err(ConditionError::Syntax(format!(
                        "expected ',' or ')' in an 'in' list but found {}",
                        t.describe()
                    )))
                }
                None => return Err(ConditionError::Syntax("unterminated 'in' list".into())),
            }
        }
    }

    fn parse_literal(&mut self) -> Result<Literal, ConditionError> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(Literal::Str { raw: s }),
            Some(Tok::Number(n)) => Ok(Literal::Num(n)),
            Some(Tok::DateTime(d)) => parse_datetime(&d)
                .map(Literal::DateTime)
                .ok_or_else(|| ConditionError::BadLiteral(format!("[{d}]"))),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("true") => Ok(Literal::Bool(true)),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("false") => Ok(Literal::Bool(false)),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("null") => Ok(Literal::Null),
            Some(t) => Err(ConditionError::BadLiteral(t.describe())),
            None => Err(ConditionError::BadLiteral("missing value".into())),
        }
    }
}

#[cfg(test)]
#[path = "cw_conditions_tests.rs"]
mod tests;
