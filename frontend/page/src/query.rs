//! query: what does the text in the search box ask for?
//!
//! Either one sentence — any text without operators, sent as typed, as it always was — or up to
//! [`MAX_TERMS`] weighted terms, which the proxy composes into one vector
//! (`Σ weight × unit(term)`). The grammar (README.md "Query syntax" and the page's help):
//!
//! - A term runs until the next separator: a `+` standing alone (`dog + beach`), or a word that
//!   starts with a mark: `-` (weight −1: `red car -night`), `+` (`red car +blue`), a weight
//!   `N:` or `N.N:` (`2:dog`, `0.5:beach`), a signed weight (`-2:night`), or `similar:ID`.
//! - A mark counts only at the start of a word and right before the term's first character: a
//!   hyphen inside a word (`t-shirt`), a dash between spaces (`salt - pepper`), a number
//!   (`-5 degrees`, `10:30`) or `step 2: dog` are text.
//! - `similar:ID` (also `-similar:ID`, `2:similar:ID`, `similar:"an id"`) is an indexed image as
//!   a term; it ends at its id.
//! - Quotes keep operators as text (`dog + "salt + pepper"`) and group words after a mark
//!   (`-"night sky"`).
//! - Weights are between −10 and 10 and not 0; at least one term must be positive (`-night`
//!   alone would rank every image by how unlike night it is).
//!
//! Pure: text in, [`Query`] or a [`QueryError`] the page shows beside the box.

use thiserror::Error;

/// Terms in one query (the proxy's bound).
pub const MAX_TERMS: usize = 8;
/// The largest weight, either sign (the proxy's bound).
pub const MAX_WEIGHT: f32 = 10.0;
/// Longest text of one term (the proxy's bound on query text).
pub const MAX_TERM_CHARS: usize = 1000;

/// What a term is made of.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    /// Text the model worker encodes.
    Text(String),
    /// An indexed image by its id (`similar:ID`); the proxy looks its vector up.
    Image(String),
}

/// One weighted term.
#[derive(Debug, Clone, PartialEq)]
pub struct Term {
    pub weight: f32,
    pub part: Part,
}

/// A parsed search box.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    /// No operators: the text as typed (trimmed), encoded as one sentence.
    Plain(String),
    /// Weighted terms, in the order typed.
    Terms(Vec<Term>),
}

impl Query {
    /// The one sentence to encode, when the query is just that: plain text, or a single text
    /// term of weight 1 (`+dog`).
    pub fn sentence(&self) -> Option<&str> {
        match self {
            Query::Plain(text) => Some(text),
            Query::Terms(terms) => match terms.as_slice() {
                [
                    Term {
                        weight,
                        part: Part::Text(text),
                    },
                ] if *weight == 1.0 => Some(text),
                _ => None,
            },
        }
    }
}

/// Why the box cannot be searched as typed; the message is what the page shows.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum QueryError {
    #[error("Type what you are looking for, e.g. “a dog on a beach”.")]
    Empty,
    #[error("A “+” needs a term on each side, e.g. “dog + beach”.")]
    LonePlus,
    #[error("“{0}” has no words: write them right after the mark, e.g. “-night”.")]
    EmptyTerm(String),
    #[error("“{0}”: a weight of 0 leaves the term out; remove it, or give a weight up to 10.")]
    ZeroWeight(String),
    #[error("“{0}”: weights go from -10 to 10.")]
    WeightOutOfRange(String),
    #[error("“{0}”: put the sign before the weight, e.g. “-2:night”.")]
    SignAfterWeight(String),
    #[error("“{0}” needs an image id right after the colon, e.g. “similar:img-01”.")]
    MissingId(String),
    #[error("A quote is not closed: “{0}”.")]
    UnclosedQuote(String),
    #[error("Every term is negative: add what you want to see, e.g. “street -night”.")]
    NothingPositive,
    #[error("{0} terms: a query has at most {MAX_TERMS}.")]
    TooManyTerms(usize),
    #[error("Term {0} is over {MAX_TERM_CHARS} characters.")]
    TermTooLong(usize),
}

/// Reads the search box.
pub fn parse(input: &str) -> Result<Query, QueryError> {
    let text = input.trim();
    if text.is_empty() {
        return Err(QueryError::Empty);
    }
    let tokens = scan(text);
    if !tokens.iter().any(Token::is_operator) {
        return Ok(Query::Plain(text.to_string()));
    }
    let terms = group(tokens)?;
    check(&terms)?;
    Ok(Query::Terms(terms))
}

/// One word of the box as the scanner reads it.
#[derive(Debug)]
enum Token {
    /// A `+` standing alone: the separator.
    Plus,
    Word(Word),
}

#[derive(Debug)]
struct Word {
    /// The word as typed, for messages.
    source: String,
    /// `Some` when the word starts with a sign or a weight: it begins a term of that weight
    /// (checked when the term is made).
    weight: Option<f32>,
    part: Part,
    /// What is wrong with the word, in a query with operators.
    problem: Option<QueryError>,
}

impl Token {
    fn is_operator(&self) -> bool {
        match self {
            Token::Plus => true,
            Token::Word(w) => w.weight.is_some() || matches!(w.part, Part::Image(_)),
        }
    }
}

fn scan(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let (token, len) = token(rest);
        tokens.push(token);
        rest = rest[len..].trim_start();
    }
    tokens
}

/// The token at the start of `s` (which starts with a non-space) and its length in bytes.
fn token(s: &str) -> (Token, usize) {
    if word_end(s) == 1 && s.starts_with('+') {
        return (Token::Plus, 1);
    }
    let (weight, body_at) = mark(s);
    let body = &s[body_at..];
    let (part, len, mut problem) = match body.strip_prefix("similar:") {
        Some(id) if id.starts_with(|c: char| !c.is_whitespace()) => {
            let (id, len, problem) = text_body(id);
            (Part::Image(id), "similar:".len() + len, problem)
        }
        _ => {
            let (text, len, problem) = text_body(body);
            (Part::Text(text), len, problem)
        }
    };
    let source = s[..body_at + len].to_string();
    if weight.is_some() && body.starts_with(['-', '+']) {
        problem = Some(QueryError::SignAfterWeight(source.clone()));
    }
    match &part {
        Part::Image(id) if id.is_empty() && problem.is_none() => {
            problem = Some(QueryError::MissingId(source.clone()))
        }
        _ => {}
    }
    let problem = problem.map(|p| match p {
        QueryError::UnclosedQuote(_) => QueryError::UnclosedQuote(source.clone()),
        p => p,
    });
    let word = Word {
        source,
        weight,
        part,
        problem,
    };
    (Token::Word(word), body_at + len)
}

/// Where the word at the start of `s` ends (its first whitespace).
fn word_end(s: &str) -> usize {
    s.find(char::is_whitespace).unwrap_or(s.len())
}

/// The mark at the start of a word — `-`, `+`, `N:`, `N.N:`, or a sign and a weight — as a weight,
/// and where the word's body starts. No mark unless a term's first character follows it.
fn mark(s: &str) -> (Option<f32>, usize) {
    let (sign, after_sign) = match s.as_bytes()[0] {
        b'-' => (-1.0, 1),
        b'+' => (1.0, 1),
        _ => (1.0, 0),
    };
    let number = number_len(&s[after_sign..]);
    let colon = after_sign + number;
    if number > 0 && s[colon..].starts_with(':') && starts_term(&s[colon + 1..], true) {
        // Digits only: the parse fails on nothing but overflow, which `check` refuses.
        let weight = s[after_sign..colon].parse::<f32>().unwrap_or(f32::INFINITY);
        return (Some(sign * weight), colon + 1);
    }
    if after_sign == 1 && starts_term(&s[1..], false) {
        return (Some(sign), 1);
    }
    (None, 0)
}

/// Does a term start here? Not at a space, the end or a digit (`-5`, `10:30`); after a weight a
/// sign does (and is refused), after a sign it does not (`--`, `+-`).
fn starts_term(s: &str, after_weight: bool) -> bool {
    match s.chars().next() {
        None => false,
        Some(c) if c.is_whitespace() || c.is_ascii_digit() => false,
        Some('-' | '+') => after_weight,
        Some(_) => true,
    }
}

/// The length of a weight at the start of `s`: digits, optionally a point and more digits.
fn number_len(s: &str) -> usize {
    let digits = |s: &str| s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let whole = digits(s);
    if whole == 0 {
        return 0;
    }
    match s[whole..].strip_prefix('.') {
        Some(rest) if digits(rest) > 0 => whole + 1 + digits(rest),
        _ => whole,
    }
}

/// A term's text at the start of `s`: a quoted run (the rest of its word appended), or the word.
fn text_body(s: &str) -> (String, usize, Option<QueryError>) {
    let Some(inside) = s.strip_prefix('"') else {
        let end = word_end(s);
        return (s[..end].to_string(), end, None);
    };
    let Some(close) = inside.find('"') else {
        let problem = QueryError::UnclosedQuote(String::new());
        return (inside.to_string(), s.len(), Some(problem));
    };
    let after = &inside[close + 1..];
    let tail = word_end(after);
    let text = format!("{}{}", &inside[..close], &after[..tail]);
    (text, 1 + close + 1 + tail, None)
}

/// A term being collected: the words after its mark up to the next separator.
struct Draft {
    source: String,
    weight: f32,
    part: Part,
}

/// Tokens into terms: a `+` or a marked word starts a new term, `similar:ID` ends one, other
/// words join the term before them.
fn group(tokens: Vec<Token>) -> Result<Vec<Term>, QueryError> {
    let mut drafts: Vec<Draft> = Vec::new();
    let mut open = false;
    let mut after_plus = false;
    for token in tokens {
        let word = match token {
            Token::Plus if after_plus || drafts.is_empty() => return Err(QueryError::LonePlus),
            Token::Plus => {
                (open, after_plus) = (false, true);
                continue;
            }
            Token::Word(word) => word,
        };
        if let Some(problem) = word.problem {
            return Err(problem);
        }
        after_plus = false;
        match (drafts.last_mut(), &word.part) {
            (Some(last), Part::Text(more)) if open && word.weight.is_none() => {
                if let Part::Text(text) = &mut last.part {
                    text.push(' ');
                    text.push_str(more);
                }
            }
            _ => {
                open = matches!(word.part, Part::Text(_));
                drafts.push(Draft {
                    weight: checked_weight(word.weight.unwrap_or(1.0), &word.source)?,
                    source: word.source,
                    part: word.part,
                });
            }
        }
    }
    if after_plus {
        return Err(QueryError::LonePlus);
    }
    drafts.into_iter().map(finish).collect()
}

fn checked_weight(weight: f32, source: &str) -> Result<f32, QueryError> {
    if weight == 0.0 {
        return Err(QueryError::ZeroWeight(source.to_string()));
    }
    if !weight.is_finite() || weight.abs() > MAX_WEIGHT {
        return Err(QueryError::WeightOutOfRange(source.to_string()));
    }
    Ok(weight)
}

/// A draft's text with its spaces evened out; a term with no words is refused.
fn finish(draft: Draft) -> Result<Term, QueryError> {
    let part = match draft.part {
        Part::Text(text) => {
            let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
            if text.is_empty() {
                return Err(QueryError::EmptyTerm(draft.source));
            }
            Part::Text(text)
        }
        image => image,
    };
    Ok(Term {
        weight: draft.weight,
        part,
    })
}

/// The bounds on a whole query: how many terms, how long each, and something positive.
fn check(terms: &[Term]) -> Result<(), QueryError> {
    if terms.len() > MAX_TERMS {
        return Err(QueryError::TooManyTerms(terms.len()));
    }
    for (n, term) in terms.iter().enumerate() {
        if let Part::Text(text) = &term.part
            && text.chars().count() > MAX_TERM_CHARS
        {
            return Err(QueryError::TermTooLong(n + 1));
        }
    }
    if !terms.iter().any(|t| t.weight > 0.0) {
        return Err(QueryError::NothingPositive);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(weight: f32, text: &str) -> Term {
        Term {
            weight,
            part: Part::Text(text.into()),
        }
    }

    fn image(weight: f32, id: &str) -> Term {
        Term {
            weight,
            part: Part::Image(id.into()),
        }
    }

    #[test]
    fn text_without_operators_is_one_sentence_as_typed() {
        for input in [
            "red car parked on a street",
            "a t-shirt with a logo",
            "a clock showing 10:30",
            "-5 degrees outside",
            "+1 for this",
            "salt - pepper",
            "rock -- paper",
            "step 2: dog",
            "a 12\" vinyl record",
            "\"red car\"",
            "an \"unclosed quote",
            "similar: cats",
            "ratio 2.5:1",
            "e-mail",
        ] {
            assert_eq!(parse(input), Ok(Query::Plain(input.into())), "{input:?}");
        }
        assert_eq!(
            parse("  red   car \n"),
            Ok(Query::Plain("red   car".into())),
            "trimmed only"
        );
    }

    #[test]
    fn operators_make_weighted_terms() {
        let table: &[(&str, Vec<Term>)] = &[
            (
                "red car -night",
                vec![text(1.0, "red car"), text(-1.0, "night")],
            ),
            ("2:dog + beach", vec![text(2.0, "dog"), text(1.0, "beach")]),
            ("0.5:beach", vec![text(0.5, "beach")]),
            ("10:dog", vec![text(10.0, "dog")]),
            ("+dog", vec![text(1.0, "dog")]),
            (
                "red car +blue",
                vec![text(1.0, "red car"), text(1.0, "blue")],
            ),
            (
                "street -2:night sky",
                vec![text(1.0, "street"), text(-2.0, "night sky")],
            ),
            (
                "street -0.5:night",
                vec![text(1.0, "street"), text(-0.5, "night")],
            ),
            (
                "\"red car\" -night",
                vec![text(1.0, "red car"), text(-1.0, "night")],
            ),
            (
                "dog -\"night  sky\" street",
                vec![text(1.0, "dog"), text(-1.0, "night sky street")],
            ),
            (
                "dog + \"salt + pepper\"",
                vec![text(1.0, "dog"), text(1.0, "salt + pepper")],
            ),
            (
                "dog -t-shirt",
                vec![text(1.0, "dog"), text(-1.0, "t-shirt")],
            ),
            (
                "dog + 10:30 clock",
                vec![text(1.0, "dog"), text(1.0, "10:30 clock")],
            ),
            (
                "cat  +   dog  beach",
                vec![text(1.0, "cat"), text(1.0, "dog beach")],
            ),
            ("+similar:img3", vec![image(1.0, "img3")]),
            ("similar:img3", vec![image(1.0, "img3")]),
            (
                "dog -similar:img3 beach",
                vec![text(1.0, "dog"), image(-1.0, "img3"), text(1.0, "beach")],
            ),
            (
                "dog + 2:similar:\"my id\"",
                vec![text(1.0, "dog"), image(2.0, "my id")],
            ),
            (
                "similar:a similar:b",
                vec![image(1.0, "a"), image(1.0, "b")],
            ),
            (
                "a + b + c + d + e + f + g + h",
                ["a", "b", "c", "d", "e", "f", "g", "h"]
                    .map(|w| text(1.0, w))
                    .to_vec(),
            ),
        ];
        for (input, terms) in table {
            assert_eq!(parse(input), Ok(Query::Terms(terms.clone())), "{input:?}");
        }
    }

    #[test]
    fn bad_queries_say_what_is_wrong() {
        let long = format!("dog -{}", "x".repeat(MAX_TERM_CHARS + 1));
        let table: &[(&str, QueryError)] = &[
            ("", QueryError::Empty),
            ("  \t ", QueryError::Empty),
            ("dog +", QueryError::LonePlus),
            ("+ dog", QueryError::LonePlus),
            ("dog + + cat", QueryError::LonePlus),
            ("0:dog", QueryError::ZeroWeight("0:dog".into())),
            ("dog -0.0:cat", QueryError::ZeroWeight("-0.0:cat".into())),
            ("11:dog", QueryError::WeightOutOfRange("11:dog".into())),
            (
                "dog -10.5:cat",
                QueryError::WeightOutOfRange("-10.5:cat".into()),
            ),
            (
                "99999999999999999999999999999999999999999:dog",
                QueryError::WeightOutOfRange(
                    "99999999999999999999999999999999999999999:dog".into(),
                ),
            ),
            (
                "dog 2:-night",
                QueryError::SignAfterWeight("2:-night".into()),
            ),
            (
                "dog + similar:\"\"",
                QueryError::MissingId("similar:\"\"".into()),
            ),
            (
                "dog -\"night sky",
                QueryError::UnclosedQuote("-\"night sky".into()),
            ),
            ("dog -\"\"", QueryError::EmptyTerm("-\"\"".into())),
            ("-night", QueryError::NothingPositive),
            ("-dog + -2:similar:img1", QueryError::NothingPositive),
            (
                "a + b + c + d + e + f + g + h + i",
                QueryError::TooManyTerms(9),
            ),
            (long.as_str(), QueryError::TermTooLong(2)),
        ];
        for (input, error) in table {
            assert_eq!(parse(input).as_ref(), Err(error), "{input:?}");
        }
    }

    #[test]
    fn messages_quote_the_word_at_fault() {
        let message = parse("dog 11:cat").unwrap_err().to_string();
        assert_eq!(message, "“11:cat”: weights go from -10 to 10.");
        assert_eq!(
            QueryError::TooManyTerms(9).to_string(),
            "9 terms: a query has at most 8."
        );
    }

    #[test]
    fn a_single_unweighted_text_is_a_sentence() {
        let sentence = |input: &str| {
            parse(input)
                .ok()
                .and_then(|q| q.sentence().map(String::from))
        };
        assert_eq!(sentence("red car"), Some("red car".into()));
        assert_eq!(sentence("+red car"), Some("red car".into()));
        assert_eq!(sentence("2:red car"), None);
        assert_eq!(sentence("red + car"), None);
        assert_eq!(sentence("similar:img1"), None);
    }
}
