//! Sweep constraints: small boolean expressions over a point's axis values, such as
//! `queue >= 2 * flows && cc != "bbr"`. A point is run only if every constraint holds.
//!
//! Grammar (usual precedence, left associative):
//!
//! ```text
//! or   = and ("||" and)*
//! and  = not ("&&" not)*
//! not  = "!" not | cmp
//! cmp  = sum (("<" | "<=" | ">" | ">=" | "==" | "!=") sum)?
//! sum  = prod (("+" | "-") prod)*
//! prod = unary (("*" | "/") unary)*
//! unary = "-" unary | atom
//! atom = NUMBER | "STRING" | true | false | IDENT | "(" or ")"
//! ```
//!
//! An identifier is an axis name and stands for the point's value on that axis: its number
//! when the axis value is numeric (ranges, numbers in `values`), otherwise its text.

use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Num(f64),
    Str(String),
    Bool(bool),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Num(x) => write!(f, "{x}"),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Bool(b) => write!(f, "{b}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Num(f64),
    Str(String),
    Ident(String),
    Op(&'static str),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Lit(Value),
    Var(String),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Bin(&'static str, Box<Expr>, Box<Expr>),
}

const OPS: [&str; 16] = [
    "&&", "||", "<=", ">=", "==", "!=", "<", ">", "!", "+", "-", "*", "/", "(", ")", "=",
];

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut rest = s.trim_start();
    while !rest.is_empty() {
        let c = rest.chars().next().unwrap_or(' ');
        if c.is_ascii_digit() || (c == '.' && rest[1..].starts_with(|d: char| d.is_ascii_digit())) {
            let end = rest
                .find(|ch: char| {
                    !(ch.is_ascii_alphanumeric()
                        || ch == '.'
                        || ch == '_'
                        || ch == '+'
                        || ch == '-')
                })
                .unwrap_or(rest.len());
            // A sign belongs to the number only right after an exponent mark.
            let mut len = end;
            for (i, ch) in rest[..end].char_indices() {
                if (ch == '+' || ch == '-') && !(i > 0 && matches!(&rest[i - 1..i], "e" | "E")) {
                    len = i;
                    break;
                }
            }
            let text = rest[..len].replace('_', "");
            let x: f64 = text
                .parse()
                .map_err(|_| format!("invalid number `{}`", &rest[..len]))?;
            out.push(Tok::Num(x));
            rest = &rest[len..];
        } else if c == '"' {
            let mut value = String::new();
            let mut chars = rest[1..].char_indices();
            let mut closed = None;
            while let Some((i, ch)) = chars.next() {
                match ch {
                    '"' => {
                        closed = Some(i + 2);
                        break;
                    }
                    '\\' => match chars.next() {
                        Some((_, e)) => value.push(e),
                        None => break,
                    },
                    _ => value.push(ch),
                }
            }
            let end = closed.ok_or("unterminated string")?;
            out.push(Tok::Str(value));
            rest = &rest[end..];
        } else if c.is_ascii_alphabetic() || c == '_' {
            let end = rest
                .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                .unwrap_or(rest.len());
            out.push(Tok::Ident(rest[..end].to_string()));
            rest = &rest[end..];
        } else if let Some(op) = OPS.iter().find(|op| rest.starts_with(**op)) {
            if *op == "=" {
                return Err("`=` is not a comparison: write `==`".into());
            }
            out.push(Tok::Op(op));
            rest = &rest[op.len()..];
        } else {
            return Err(format!("unexpected character `{c}`"));
        }
        rest = rest.trim_start();
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    at: usize,
}

impl Parser {
    fn peek_op(&self) -> Option<&'static str> {
        match self.toks.get(self.at) {
            Some(Tok::Op(o)) => Some(o),
            _ => None,
        }
    }
    fn eat(&mut self, ops: &[&'static str]) -> Option<&'static str> {
        let op = self.peek_op().filter(|o| ops.contains(o))?;
        self.at += 1;
        Some(op)
    }
    fn or(&mut self) -> Result<Expr, String> {
        let mut e = self.and()?;
        while let Some(op) = self.eat(&["||"]) {
            e = Expr::Bin(op, Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }
    fn and(&mut self) -> Result<Expr, String> {
        let mut e = self.not()?;
        while let Some(op) = self.eat(&["&&"]) {
            e = Expr::Bin(op, Box::new(e), Box::new(self.not()?));
        }
        Ok(e)
    }
    fn not(&mut self) -> Result<Expr, String> {
        if self.eat(&["!"]).is_some() {
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.cmp()
    }
    fn cmp(&mut self) -> Result<Expr, String> {
        let e = self.sum()?;
        if let Some(op) = self.eat(&["<", "<=", ">", ">=", "==", "!="]) {
            return Ok(Expr::Bin(op, Box::new(e), Box::new(self.sum()?)));
        }
        Ok(e)
    }
    fn sum(&mut self) -> Result<Expr, String> {
        let mut e = self.prod()?;
        while let Some(op) = self.eat(&["+", "-"]) {
            e = Expr::Bin(op, Box::new(e), Box::new(self.prod()?));
        }
        Ok(e)
    }
    fn prod(&mut self) -> Result<Expr, String> {
        let mut e = self.unary()?;
        while let Some(op) = self.eat(&["*", "/"]) {
            e = Expr::Bin(op, Box::new(e), Box::new(self.unary()?));
        }
        Ok(e)
    }
    fn unary(&mut self) -> Result<Expr, String> {
        if self.eat(&["-"]).is_some() {
            return Ok(Expr::Neg(Box::new(self.unary()?)));
        }
        self.atom()
    }
    fn atom(&mut self) -> Result<Expr, String> {
        let t = self.toks.get(self.at).cloned();
        self.at += 1;
        match t {
            Some(Tok::Num(x)) => Ok(Expr::Lit(Value::Num(x))),
            Some(Tok::Str(s)) => Ok(Expr::Lit(Value::Str(s))),
            Some(Tok::Ident(i)) if i == "true" => Ok(Expr::Lit(Value::Bool(true))),
            Some(Tok::Ident(i)) if i == "false" => Ok(Expr::Lit(Value::Bool(false))),
            Some(Tok::Ident(i)) => Ok(Expr::Var(i)),
            Some(Tok::Op("(")) => {
                let e = self.or()?;
                self.eat(&[")"]).ok_or("expected `)`")?;
                Ok(e)
            }
            Some(Tok::Op(o)) => Err(format!("expected a value, found `{o}`")),
            None => Err("expected a value, found the end of the expression".into()),
        }
    }
}

impl Expr {
    pub fn parse(s: &str) -> Result<Expr, String> {
        let mut p = Parser {
            toks: tokenize(s)?,
            at: 0,
        };
        let e = p.or()?;
        if let Some(t) = p.toks.get(p.at) {
            return Err(format!("unexpected {t:?} after a complete expression"));
        }
        Ok(e)
    }

    /// Every identifier the expression reads, in order of appearance.
    pub fn vars(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_vars(&mut out);
        out
    }
    fn collect_vars<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Expr::Lit(_) => {}
            Expr::Var(v) => out.push(v),
            Expr::Not(e) | Expr::Neg(e) => e.collect_vars(out),
            Expr::Bin(_, a, b) => {
                a.collect_vars(out);
                b.collect_vars(out);
            }
        }
    }

    pub fn eval(&self, var: &dyn Fn(&str) -> Option<Value>) -> Result<Value, String> {
        Ok(match self {
            Expr::Lit(v) => v.clone(),
            Expr::Var(name) => var(name).ok_or_else(|| format!("unknown axis `{name}`"))?,
            Expr::Not(e) => match e.eval(var)? {
                Value::Bool(b) => Value::Bool(!b),
                v => return Err(format!("`!` needs true or false, found {v}")),
            },
            Expr::Neg(e) => match e.eval(var)? {
                Value::Num(x) => Value::Num(-x),
                v => return Err(format!("`-` needs a number, found {v}")),
            },
            Expr::Bin(op, a, b) => {
                let (a, b) = (a.eval(var)?, b.eval(var)?);
                match (*op, a, b) {
                    ("&&", Value::Bool(x), Value::Bool(y)) => Value::Bool(x && y),
                    ("||", Value::Bool(x), Value::Bool(y)) => Value::Bool(x || y),
                    ("+", Value::Num(x), Value::Num(y)) => Value::Num(x + y),
                    ("-", Value::Num(x), Value::Num(y)) => Value::Num(x - y),
                    ("*", Value::Num(x), Value::Num(y)) => Value::Num(x * y),
                    ("/", Value::Num(x), Value::Num(y)) => Value::Num(x / y),
                    ("<", Value::Num(x), Value::Num(y)) => Value::Bool(x < y),
                    ("<=", Value::Num(x), Value::Num(y)) => Value::Bool(x <= y),
                    (">", Value::Num(x), Value::Num(y)) => Value::Bool(x > y),
                    (">=", Value::Num(x), Value::Num(y)) => Value::Bool(x >= y),
                    ("==", x, y) => Value::Bool(same(&x, &y)?),
                    ("!=", x, y) => Value::Bool(!same(&x, &y)?),
                    (op, x, y) => return Err(format!("cannot apply `{op}` to {x} and {y}")),
                }
            }
        })
    }
}

fn same(a: &Value, b: &Value) -> Result<bool, String> {
    match (a, b) {
        (Value::Num(x), Value::Num(y)) => Ok(x == y),
        (Value::Str(x), Value::Str(y)) => Ok(x == y),
        (Value::Bool(x), Value::Bool(y)) => Ok(x == y),
        _ => Err(format!("cannot compare {a} with {b}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(s: &str) -> Result<Value, String> {
        let vars = |n: &str| match n {
            "queue" => Some(Value::Num(20.0)),
            "flows" => Some(Value::Num(4.0)),
            "cc" => Some(Value::Str("cubic".into())),
            _ => None,
        };
        Expr::parse(s)?.eval(&vars)
    }

    #[test]
    fn constraints_follow_the_usual_precedence() {
        assert_eq!(eval("queue >= 2 * flows + 12"), Ok(Value::Bool(true)));
        assert_eq!(eval("queue >= 2 * (flows + 12)"), Ok(Value::Bool(false)));
        assert_eq!(
            eval(r#"cc != "bbr" && queue / flows == 5"#),
            Ok(Value::Bool(true))
        );
        assert_eq!(eval("!(flows < 2) || cc == \"x\""), Ok(Value::Bool(true)));
        assert_eq!(eval("-flows + 1e1 - 1.5e+0"), Ok(Value::Num(4.5)));
        assert_eq!(eval("queue-flows"), Ok(Value::Num(16.0)));
    }

    #[test]
    fn bad_constraints_say_what_is_wrong() {
        assert_eq!(
            eval("queue = 3").unwrap_err(),
            "`=` is not a comparison: write `==`"
        );
        assert_eq!(eval("delay > 3").unwrap_err(), "unknown axis `delay`");
        assert!(eval("cc < 3").unwrap_err().contains("cannot apply `<`"));
        assert!(eval("(queue > 3").unwrap_err().contains("expected `)`"));
        assert!(eval("queue > ")
            .unwrap_err()
            .contains("end of the expression"));
        assert!(eval("\"abc").unwrap_err().contains("unterminated"));
        assert_eq!(
            Expr::parse("a > b + c").unwrap().vars(),
            vec!["a", "b", "c"]
        );
    }
}
