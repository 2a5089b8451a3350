//! Kubernetes label and field selectors: the `?labelSelector=` and
//! `?fieldSelector=` query syntax, the `metav1.LabelSelector` a claim's
//! `spec.selector` carries, and matching objects against them.
//!
//! Label selectors are a conjunction of requirements on labels; field
//! selectors a conjunction of equalities on a few fields per kind, the same
//! fields upstream's API server lets clients select on.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use serde_json::{Map, Value};

use crate::kinds::Kind;

/// Why a selector was refused; the API server answers 400 BadRequest.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    #[error("unable to parse requirement: found '{found}', expected: {expected}")]
    Unexpected {
        found: String,
        expected: &'static str,
    },
    #[error("unable to parse requirement: invalid label key \"{key}\": {why}")]
    InvalidKey { key: String, why: &'static str },
    #[error("unable to parse requirement: invalid label value \"{value}\": {why}")]
    InvalidValue { value: String, why: &'static str },
    #[error("unable to parse requirement: operator {operator} on key \"{key}\" {why}")]
    WrongValueCount {
        key: String,
        operator: &'static str,
        why: &'static str,
    },
    #[error("\"{0}\" is not a valid label selector operator")]
    UnknownOperator(String),
    #[error("field label not supported: {0}")]
    UnsupportedField(String),
    #[error(
        "invalid field selector term \"{0}\": expected <field>=<value>, <field>==<value> or <field>!=<value>"
    )]
    FieldTerm(String),
    #[error("invalid field selector value \"{value}\": {why}")]
    FieldValue { value: String, why: &'static str },
}

/// A set of requirements on an object's labels; all must hold. The empty
/// selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

/// `=` is `In` with one value and `!=` is `NotIn` with one value: they
/// match exactly the same label sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

impl Operator {
    fn from_api(name: &str) -> Result<Operator, SelectorError> {
        match name {
            "In" => Ok(Operator::In),
            "NotIn" => Ok(Operator::NotIn),
            "Exists" => Ok(Operator::Exists),
            "DoesNotExist" => Ok(Operator::DoesNotExist),
            other => Err(SelectorError::UnknownOperator(other.to_string())),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Operator::In => "In",
            Operator::NotIn => "NotIn",
            Operator::Exists => "Exists",
            Operator::DoesNotExist => "DoesNotExist",
        }
    }
}

impl Requirement {
    /// A requirement whose key, values and number of values are valid.
    fn new(
        key: &str,
        operator: Operator,
        values: Vec<String>,
    ) -> Result<Requirement, SelectorError> {
        validate_key(key)?;
        for value in &values {
            validate_value(value)?;
        }
        let takes_values = matches!(operator, Operator::In | Operator::NotIn);
        if takes_values == values.is_empty() {
            return Err(SelectorError::WrongValueCount {
                key: key.to_string(),
                operator: operator.as_str(),
                why: if takes_values {
                    "needs at least one value"
                } else {
                    "takes no values"
                },
            });
        }
        Ok(Requirement {
            key: key.to_string(),
            operator,
            values,
        })
    }

    /// Whether a label with this key and `value` (None: no such label)
    /// satisfies the requirement.
    fn matches(&self, value: Option<&str>) -> bool {
        let listed = |v: &str| self.values.iter().any(|listed| listed == v);
        match self.operator {
            Operator::In => value.is_some_and(listed),
            Operator::NotIn => value.is_none_or(|v| !listed(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        }
    }
}

impl LabelSelector {
    /// Parses the `?labelSelector=` syntax: comma-separated `k=v`, `k==v`,
    /// `k!=v`, `k in (a,b)`, `k notin (a)`, `k` and `!k`. Blank matches
    /// everything.
    pub fn parse(s: &str) -> Result<LabelSelector, SelectorError> {
        let mut parser = Parser::new(s);
        let mut requirements = Vec::new();
        if parser.peek() == &Token::End {
            return Ok(LabelSelector { requirements });
        }
        loop {
            requirements.push(parser.requirement()?);
            match parser.next() {
                Token::End => return Ok(LabelSelector { requirements }),
                Token::Comma => continue,
                other => return Err(unexpected(&other, "',' or end of string")),
            }
        }
    }

    /// The selector a `metav1.LabelSelector` describes. A present but empty
    /// one matches everything, as upstream. What an absent one means is the
    /// caller's to decide (a claim without `spec.selector` accepts any
    /// volume).
    pub fn from_api(selector: &meta::LabelSelector) -> Result<LabelSelector, SelectorError> {
        let labels = selector
            .match_labels
            .iter()
            .flatten()
            .map(|(key, value)| Requirement::new(key, Operator::In, vec![value.clone()]));
        let expressions = selector.match_expressions.iter().flatten().map(|e| {
            let operator = Operator::from_api(&e.operator)?;
            Requirement::new(&e.key, operator, e.values.clone().unwrap_or_default())
        });
        let requirements = labels.chain(expressions).collect::<Result<_, _>>()?;
        Ok(LabelSelector { requirements })
    }

    /// Matches labels as they sit in a JSON body's `metadata.labels`.
    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        // Label values are strings in every valid object; anything else reads
        // as no label at all.
        self.matches_lookup(|key| labels?.get(key)?.as_str())
    }

    /// Matches labels of a typed object.
    pub fn matches_btree(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        self.matches_lookup(|key| labels?.get(key).map(String::as_str))
    }

    /// Whether this selector has no requirements, so matches everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    fn matches_lookup<'a>(&self, label: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.requirements.iter().all(|r| r.matches(label(&r.key)))
    }
}

const NAME_RULE: &str = "must be at most 63 characters, all alphanumeric, '-', '_' or '.', starting and ending with an alphanumeric character";
const PREFIX_RULE: &str = "the prefix before '/' must be a DNS subdomain: at most 253 characters, dot-separated parts of lower-case alphanumerics and '-' that start and end with an alphanumeric";

/// A label key is `[prefix/]name`.
fn validate_key(key: &str) -> Result<(), SelectorError> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    let invalid = |why| {
        Err(SelectorError::InvalidKey {
            key: key.to_string(),
            why,
        })
    };
    if prefix.is_some_and(|p| !is_dns_subdomain(p)) {
        return invalid(PREFIX_RULE);
    }
    if name.is_empty() || !is_label_token(name) {
        return invalid(NAME_RULE);
    }
    Ok(())
}

fn validate_value(value: &str) -> Result<(), SelectorError> {
    if is_label_token(value) {
        return Ok(());
    }
    Err(SelectorError::InvalidValue {
        value: value.to_string(),
        why: "must be empty or at most 63 characters, all alphanumeric, '-', '_' or '.', starting and ending with an alphanumeric character",
    })
}

/// A label name or value: empty, or up to 63 of `[A-Za-z0-9-_.]` with
/// alphanumerics at both ends.
fn is_label_token(s: &str) -> bool {
    let alnum_ends = |s: &str| {
        s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.ends_with(|c: char| c.is_ascii_alphanumeric())
    };
    s.is_empty()
        || (s.len() <= 63
            && alnum_ends(s)
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)))
}

fn is_dns_subdomain(s: &str) -> bool {
    let is_dns_label = |part: &str| {
        let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
        !part.is_empty()
            && part.len() <= 63
            && part.starts_with(alnum)
            && part.ends_with(alnum)
            && part.chars().all(|c| alnum(c) || c == '-')
    };
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    /// A key, a value, or the operators `in` and `notin`.
    Word(String),
    Not,
    /// `=` or `==`.
    Equals,
    NotEquals,
    Comma,
    Open,
    Close,
    End,
}

impl Token {
    fn text(&self) -> &str {
        match self {
            Token::Word(word) => word,
            Token::Not => "!",
            Token::Equals => "=",
            Token::NotEquals => "!=",
            Token::Comma => ",",
            Token::Open => "(",
            Token::Close => ")",
            Token::End => "",
        }
    }
}

fn unexpected(found: &Token, expected: &'static str) -> SelectorError {
    SelectorError::Unexpected {
        found: found.text().to_string(),
        expected,
    }
}

fn tokenize(s: &str) -> Vec<Token> {
    let is_special = |c: char| c.is_whitespace() || "!=,()".contains(c);
    let mut tokens = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        let token = match c {
            c if c.is_whitespace() => continue,
            ',' => Token::Comma,
            '(' => Token::Open,
            ')' => Token::Close,
            '=' => {
                chars.next_if_eq(&'=');
                Token::Equals
            }
            '!' if chars.next_if_eq(&'=').is_some() => Token::NotEquals,
            '!' => Token::Not,
            _ => {
                let mut word = String::from(c);
                while let Some(c) = chars.next_if(|c| !is_special(*c)) {
                    word.push(c);
                }
                Token::Word(word)
            }
        };
        tokens.push(token);
    }
    tokens
}

struct Parser {
    tokens: Vec<Token>,
    position: usize,
}

impl Parser {
    fn new(s: &str) -> Parser {
        Parser {
            tokens: tokenize(s),
            position: 0,
        }
    }

    fn peek(&self) -> &Token {
        self.tokens.get(self.position).unwrap_or(&Token::End)
    }

    fn next(&mut self) -> Token {
        let token = self.peek().clone();
        self.position += 1;
        token
    }

    fn requirement(&mut self) -> Result<Requirement, SelectorError> {
        if self.peek() == &Token::Not {
            self.next();
            let key = self.key()?;
            return Requirement::new(&key, Operator::DoesNotExist, Vec::new());
        }
        let key = self.key()?;
        if matches!(self.peek(), Token::End | Token::Comma) {
            return Requirement::new(&key, Operator::Exists, Vec::new());
        }
        let (operator, values) = match self.next() {
            Token::Equals => (Operator::In, vec![self.exact_value()?]),
            Token::NotEquals => (Operator::NotIn, vec![self.exact_value()?]),
            Token::Word(word) if word == "in" => (Operator::In, self.value_list()?),
            Token::Word(word) if word == "notin" => (Operator::NotIn, self.value_list()?),
            other => return Err(unexpected(&other, "=, ==, !=, in or notin")),
        };
        Requirement::new(&key, operator, values)
    }

    fn key(&mut self) -> Result<String, SelectorError> {
        match self.next() {
            Token::Word(word) => Ok(word),
            other => Err(unexpected(&other, "a label key")),
        }
    }

    /// The value after `=` or `!=`, which may be empty (`k=` matches a label
    /// whose value is "").
    fn exact_value(&mut self) -> Result<String, SelectorError> {
        match self.peek() {
            Token::End | Token::Comma => Ok(String::new()),
            Token::Word(_) => Ok(self.next().text().to_string()),
            other => Err(unexpected(other, "a label value")),
        }
    }

    /// `(a, b, c)`; an empty list is left for `Requirement::new` to refuse,
    /// empty values between commas are kept, as upstream.
    fn value_list(&mut self) -> Result<Vec<String>, SelectorError> {
        let open = self.next();
        if open != Token::Open {
            return Err(unexpected(&open, "'('"));
        }
        let mut values = Vec::new();
        if self.peek() == &Token::Close {
            self.next();
            return Ok(values);
        }
        loop {
            let value = match self.peek() {
                Token::Word(_) => self.next().text().to_string(),
                _ => String::new(),
            };
            values.push(value);
            match self.next() {
                Token::Comma => continue,
                Token::Close => return Ok(values),
                other => return Err(unexpected(&other, "',' or ')'")),
            }
        }
    }
}

/// Equalities on fields, all of which must hold. The empty selector
/// matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector {
    terms: Vec<FieldTerm>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct FieldTerm {
    field: &'static Field,
    /// `=`/`==` rather than `!=`.
    equal: bool,
    value: String,
}

/// A selectable field: the name clients use, where it sits in the body,
/// and what it reads as when absent.
#[derive(Debug, PartialEq, Eq)]
struct Field {
    label: &'static str,
    path: &'static str,
    missing: &'static str,
}

const fn field(label: &'static str) -> Field {
    Field {
        label,
        path: label,
        missing: "",
    }
}

const METADATA_FIELDS: [Field; 2] = [field("metadata.name"), field("metadata.namespace")];

const EVENT_FIELDS: [Field; 11] = [
    field("involvedObject.kind"),
    field("involvedObject.namespace"),
    field("involvedObject.name"),
    field("involvedObject.uid"),
    field("involvedObject.apiVersion"),
    field("involvedObject.resourceVersion"),
    field("involvedObject.fieldPath"),
    field("reason"),
    field("reportingComponent"),
    Field {
        label: "source",
        path: "source.component",
        missing: "",
    },
    field("type"),
];

const POD_FIELDS: [Field; 7] = [
    field("spec.nodeName"),
    field("spec.restartPolicy"),
    field("spec.schedulerName"),
    field("spec.serviceAccountName"),
    field("status.phase"),
    field("status.podIP"),
    field("status.nominatedNodeName"),
];

const NODE_FIELDS: [Field; 1] = [Field {
    label: "spec.unschedulable",
    path: "spec.unschedulable",
    // Upstream prints the Go bool, whose zero value is false.
    missing: "false",
}];

const NAMESPACE_FIELDS: [Field; 1] = [field("status.phase")];

/// The fields of `kind` beyond `metadata.name` and `metadata.namespace`.
fn kind_fields(kind: Kind) -> &'static [Field] {
    match kind {
        Kind::Event => &EVENT_FIELDS,
        Kind::Pod => &POD_FIELDS,
        Kind::Node => &NODE_FIELDS,
        Kind::Namespace => &NAMESPACE_FIELDS,
        Kind::PersistentVolume
        | Kind::PersistentVolumeClaim
        | Kind::StorageClass
        | Kind::CsiDriver => &[],
    }
}

impl Field {
    fn find(kind: Kind, label: &str) -> Option<&'static Field> {
        METADATA_FIELDS
            .iter()
            .chain(kind_fields(kind))
            .find(|f| f.label == label)
    }

    fn read<'a>(&self, body: &'a Value) -> Cow<'a, str> {
        let found = self
            .path
            .split('.')
            .try_fold(body, |value, part| value.get(part));
        match found {
            Some(Value::String(s)) => Cow::Borrowed(s),
            Some(Value::Bool(b)) => Cow::Owned(b.to_string()),
            Some(Value::Number(n)) => Cow::Owned(n.to_string()),
            _ => Cow::Borrowed(self.missing),
        }
    }
}

impl FieldSelector {
    /// Parses `?fieldSelector=` for objects of `kind`: comma-separated
    /// `field=value`, `field==value` or `field!=value`, where `\,`, `\=` and
    /// `\\` escape those characters in a value.
    pub fn parse(kind: Kind, s: &str) -> Result<FieldSelector, SelectorError> {
        let terms = split_unescaped_commas(s)
            .into_iter()
            .filter(|term| !term.is_empty())
            .map(|term| FieldTerm::parse(kind, term))
            .collect::<Result<_, _>>()?;
        Ok(FieldSelector { terms })
    }

    /// Whether a JSON object body satisfies every term; a missing field
    /// reads as "".
    pub fn matches(&self, body: &Value) -> bool {
        self.terms
            .iter()
            .all(|term| (term.field.read(body) == term.value.as_str()) == term.equal)
    }

    /// The name a `metadata.name=` term asks for, so a list or watch can look
    /// that one object up; `matches` must still be applied to it.
    pub fn name(&self) -> Option<&str> {
        self.terms
            .iter()
            .find(|term| term.equal && term.field.label == "metadata.name")
            .map(|term| term.value.as_str())
    }
}

impl FieldTerm {
    fn parse(kind: Kind, term: &str) -> Result<FieldTerm, SelectorError> {
        let (label, equal, raw_value) =
            split_term(term).ok_or_else(|| SelectorError::FieldTerm(term.to_string()))?;
        let field = Field::find(kind, label)
            .ok_or_else(|| SelectorError::UnsupportedField(label.to_string()))?;
        Ok(FieldTerm {
            field,
            equal,
            value: unescape_value(raw_value)?,
        })
    }
}

/// Splits at commas not escaped by a backslash.
fn split_unescaped_commas(s: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ',' => {
                terms.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&s[start..]);
    terms
}

/// `(field, is_equality, raw value)` split at the first unescaped operator.
fn split_term(term: &str) -> Option<(&str, bool, &str)> {
    let mut escaped = false;
    for (i, c) in term.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        escaped = c == '\\';
        let rest = &term[i..];
        for (operator, equal) in [("!=", false), ("==", true), ("=", true)] {
            if let Some(value) = rest.strip_prefix(operator) {
                return Some((&term[..i], equal, value));
            }
        }
    }
    None
}

fn unescape_value(raw: &str) -> Result<String, SelectorError> {
    let invalid = |why| SelectorError::FieldValue {
        value: raw.to_string(),
        why,
    };
    let mut value = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(escaped @ ('\\' | ',' | '=')) => value.push(escaped),
                _ => return Err(invalid("only '\\\\', '\\,' and '\\=' are escape sequences")),
            },
            '=' => return Err(invalid("write '=' inside a value as '\\='")),
            c => value.push(c),
        }
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn labels(pairs: &str) -> BTreeMap<String, String> {
        pairs
            .split(',')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap();
                (k.to_string(), v.to_string())
            })
            .collect()
    }

    /// Parses `selector` and matches it against `pairs` (`k=v,k2=v2`) both
    /// as a typed map and as JSON.
    fn check(selector: &str, pairs: &str, expected: bool) {
        let parsed = LabelSelector::parse(selector)
            .unwrap_or_else(|e| panic!("{selector:?} should parse: {e}"));
        let btree = labels(pairs);
        let json = serde_json::to_value(&btree).unwrap();
        assert_eq!(
            parsed.matches_btree(Some(&btree)),
            expected,
            "{selector:?} on {pairs:?}"
        );
        assert_eq!(
            parsed.matches(json.as_object()),
            expected,
            "{selector:?} on {pairs:?} as JSON"
        );
    }

    #[test]
    fn label_selector_syntax() {
        check("", "", true);
        check("  ", "a=1", true);
        check("a=1", "a=1", true);
        check("a=1", "a=2", false);
        check("a=1", "", false);
        check("a==1", "a=1", true);
        check("a = 1", "a=1", true);
        check("a!=1", "a=1", false);
        check("a!=1", "a=2", true);
        check("a!=1", "", true);
        check("a=", "a=", true);
        check("a=", "a=1", false);
        check("a in (1,2)", "a=2", true);
        check("a in (1,2)", "a=3", false);
        check("a in (1,2)", "", false);
        check("a in(1 , 2 )", "a=1", true);
        check("a in (1,)", "a=", true);
        check("a notin (1)", "a=1", false);
        check("a notin (1)", "a=2", true);
        check("a notin (1)", "", true);
        check("a", "a=", true);
        check("a", "b=1", false);
        check("!a", "b=1", true);
        check("! a", "a=1", false);
        check("a=1,b", "a=1,b=2", true);
        check("a=1 , !b", "a=1,b=2", false);
        check("example.com/tier=gold", "example.com/tier=gold", true);
        check("a=in", "a=in", true);
        check("in=1", "in=1", true);
        check(
            "tier in (gold,silver),zone notin (z1),!legacy,app",
            "tier=gold,zone=z2,app=db",
            true,
        );
    }

    fn check_invalid(selector: &str, message: &str) {
        let error = LabelSelector::parse(selector).unwrap_err();
        assert_eq!(error.to_string(), message, "{selector:?}");
    }

    #[test]
    fn invalid_label_selectors() {
        check_invalid(
            "a,",
            "unable to parse requirement: found '', expected: a label key",
        );
        check_invalid(
            ",a",
            "unable to parse requirement: found ',', expected: a label key",
        );
        check_invalid(
            "a b",
            "unable to parse requirement: found 'b', expected: =, ==, !=, in or notin",
        );
        check_invalid(
            "a in 1",
            "unable to parse requirement: found '1', expected: '('",
        );
        check_invalid(
            "a in (1",
            "unable to parse requirement: found '', expected: ',' or ')'",
        );
        check_invalid(
            "a in (1 2)",
            "unable to parse requirement: found '2', expected: ',' or ')'",
        );
        check_invalid(
            "a in ()",
            "unable to parse requirement: operator In on key \"a\" needs at least one value",
        );
        check_invalid(
            "a=(",
            "unable to parse requirement: found '(', expected: a label value",
        );
        check_invalid(
            "a===b",
            "unable to parse requirement: found '=', expected: a label value",
        );
        check_invalid(
            "a=1)",
            "unable to parse requirement: found ')', expected: ',' or end of string",
        );
        check_invalid(
            "!",
            "unable to parse requirement: found '', expected: a label key",
        );
        check_invalid(
            "-a=1",
            &format!("unable to parse requirement: invalid label key \"-a\": {NAME_RULE}"),
        );
        check_invalid(
            &format!("{}=1", "a".repeat(64)),
            &format!(
                "unable to parse requirement: invalid label key \"{}\": {NAME_RULE}",
                "a".repeat(64)
            ),
        );
        check_invalid(
            "Example.com/a=1",
            &format!(
                "unable to parse requirement: invalid label key \"Example.com/a\": {PREFIX_RULE}"
            ),
        );
        check_invalid(
            "a/b/c",
            &format!("unable to parse requirement: invalid label key \"a/b/c\": {NAME_RULE}"),
        );
        check_invalid(
            "/a",
            &format!("unable to parse requirement: invalid label key \"/a\": {PREFIX_RULE}"),
        );
        assert!(matches!(
            LabelSelector::parse("a=b_"),
            Err(SelectorError::InvalidValue { .. })
        ));
        assert!(matches!(
            LabelSelector::parse("a in (x, y z)"),
            Err(SelectorError::Unexpected { .. })
        ));
    }

    fn expression(
        key: &str,
        operator: &str,
        values: Option<&[&str]>,
    ) -> meta::LabelSelectorRequirement {
        meta::LabelSelectorRequirement {
            key: key.into(),
            operator: operator.into(),
            values: values.map(|v| v.iter().map(|s| s.to_string()).collect()),
        }
    }

    fn api_selector(
        match_labels: &str,
        expressions: Vec<meta::LabelSelectorRequirement>,
    ) -> meta::LabelSelector {
        meta::LabelSelector {
            match_labels: (!match_labels.is_empty()).then(|| labels(match_labels)),
            match_expressions: (!expressions.is_empty()).then_some(expressions),
        }
    }

    fn check_api(selector: meta::LabelSelector, pairs: &str, expected: bool) {
        let parsed = LabelSelector::from_api(&selector).unwrap();
        assert_eq!(
            parsed.matches_btree(Some(&labels(pairs))),
            expected,
            "{selector:?} on {pairs:?}"
        );
    }

    #[test]
    fn api_label_selectors() {
        check_api(api_selector("", vec![]), "", true);
        check_api(api_selector("", vec![]), "a=1", true);
        check_api(api_selector("a=1", vec![]), "a=1,b=2", true);
        check_api(api_selector("a=1,b=2", vec![]), "a=1", false);
        let in_gold = || expression("tier", "In", Some(&["gold", "silver"]));
        check_api(api_selector("", vec![in_gold()]), "tier=silver", true);
        check_api(api_selector("", vec![in_gold()]), "tier=bronze", false);
        check_api(api_selector("a=1", vec![in_gold()]), "tier=gold", false);
        let not_in = expression("tier", "NotIn", Some(&["gold"]));
        check_api(api_selector("", vec![not_in]), "", true);
        let exists = expression("tier", "Exists", None);
        check_api(api_selector("", vec![exists]), "tier=", true);
        let absent = expression("tier", "DoesNotExist", Some(&[]));
        check_api(api_selector("", vec![absent]), "tier=gold", false);
        assert!(
            LabelSelector::from_api(&api_selector("", vec![]))
                .unwrap()
                .is_empty()
        );
        assert!(
            !LabelSelector::from_api(&api_selector("a=1", vec![]))
                .unwrap()
                .is_empty()
        );
    }

    fn check_api_invalid(expressions: Vec<meta::LabelSelectorRequirement>, message: &str) {
        let error = LabelSelector::from_api(&api_selector("", expressions)).unwrap_err();
        assert_eq!(error.to_string(), message);
    }

    #[test]
    fn invalid_api_label_selectors() {
        check_api_invalid(
            vec![expression("a", "In", None)],
            "unable to parse requirement: operator In on key \"a\" needs at least one value",
        );
        check_api_invalid(
            vec![expression("a", "NotIn", Some(&[]))],
            "unable to parse requirement: operator NotIn on key \"a\" needs at least one value",
        );
        check_api_invalid(
            vec![expression("a", "Exists", Some(&["x"]))],
            "unable to parse requirement: operator Exists on key \"a\" takes no values",
        );
        check_api_invalid(
            vec![expression("a", "Gt", Some(&["1"]))],
            "\"Gt\" is not a valid label selector operator",
        );
        check_api_invalid(
            vec![expression("a b", "Exists", None)],
            &format!("unable to parse requirement: invalid label key \"a b\": {NAME_RULE}"),
        );
        let bad_value = api_selector("a=x y", vec![]);
        assert!(matches!(
            LabelSelector::from_api(&bad_value),
            Err(SelectorError::InvalidValue { .. })
        ));
    }

    #[test]
    fn json_label_values_that_are_not_strings_read_as_absent() {
        let body = json!({"a": 1});
        let labels = body.as_object();
        assert!(!LabelSelector::parse("a").unwrap().matches(labels));
        assert!(LabelSelector::parse("!a").unwrap().matches(labels));
        assert!(!LabelSelector::parse("a").unwrap().matches(None));
        assert!(LabelSelector::parse("a!=1").unwrap().matches(None));
    }

    fn check_field(kind: Kind, selector: &str, body: Value, expected: bool) {
        let parsed = FieldSelector::parse(kind, selector)
            .unwrap_or_else(|e| panic!("{selector:?} should parse: {e}"));
        assert_eq!(parsed.matches(&body), expected, "{selector:?} on {body}");
    }

    #[test]
    fn field_selector_syntax() {
        let pvc = || json!({"metadata": {"name": "data", "namespace": "prod"}});
        check_field(Kind::PersistentVolumeClaim, "", pvc(), true);
        check_field(
            Kind::PersistentVolumeClaim,
            "metadata.name=data",
            pvc(),
            true,
        );
        check_field(
            Kind::PersistentVolumeClaim,
            "metadata.name==data",
            pvc(),
            true,
        );
        check_field(
            Kind::PersistentVolumeClaim,
            "metadata.name!=data",
            pvc(),
            false,
        );
        check_field(
            Kind::PersistentVolumeClaim,
            "metadata.name=logs",
            pvc(),
            false,
        );
        check_field(
            Kind::PersistentVolumeClaim,
            "metadata.name=data,metadata.namespace=prod",
            pvc(),
            true,
        );
        check_field(
            Kind::PersistentVolumeClaim,
            "metadata.name=data,,metadata.namespace!=prod",
            pvc(),
            false,
        );
        check_field(
            Kind::PersistentVolume,
            "metadata.namespace=",
            json!({"metadata": {"name": "pv1"}}),
            true,
        );
        check_field(
            Kind::PersistentVolume,
            "metadata.name=a\\,b\\=c\\\\",
            json!({"metadata": {"name": "a,b=c\\"}}),
            true,
        );
        let event = || {
            json!({
                "metadata": {"name": "e1", "namespace": "prod"},
                "involvedObject": {"kind": "PersistentVolumeClaim", "name": "data", "namespace": "prod", "uid": "u-1"},
                "reason": "ProvisioningFailed",
                "source": {"component": "persistentvolume-controller"},
                "type": "Warning",
            })
        };
        check_field(
            Kind::Event,
            "involvedObject.kind=PersistentVolumeClaim,involvedObject.name=data,involvedObject.namespace=prod,involvedObject.uid=u-1",
            event(),
            true,
        );
        check_field(
            Kind::Event,
            "source=persistentvolume-controller",
            event(),
            true,
        );
        check_field(Kind::Event, "type=Normal", event(), false);
        check_field(Kind::Event, "reportingComponent=", event(), true);
        check_field(Kind::Event, "involvedObject.fieldPath!=", event(), false);
        let pod = json!({"spec": {"nodeName": "n1"}, "status": {"phase": "Running"}});
        check_field(
            Kind::Pod,
            "spec.nodeName=n1,status.phase=Running",
            pod.clone(),
            true,
        );
        check_field(Kind::Pod, "status.podIP=", pod, true);
        check_field(
            Kind::Node,
            "spec.unschedulable=true",
            json!({"spec": {"unschedulable": true}}),
            true,
        );
        check_field(
            Kind::Node,
            "spec.unschedulable=false",
            json!({"spec": {}}),
            true,
        );
        check_field(
            Kind::Namespace,
            "status.phase=Active",
            json!({"status": {"phase": "Active"}}),
            true,
        );
    }

    fn check_field_invalid(kind: Kind, selector: &str, message: &str) {
        let error = FieldSelector::parse(kind, selector).unwrap_err();
        assert_eq!(error.to_string(), message, "{selector:?}");
    }

    #[test]
    fn invalid_field_selectors() {
        check_field_invalid(
            Kind::PersistentVolumeClaim,
            "spec.volumeName=pv1",
            "field label not supported: spec.volumeName",
        );
        check_field_invalid(Kind::Pod, "reason=x", "field label not supported: reason");
        check_field_invalid(
            Kind::Event,
            "metadata.name",
            "invalid field selector term \"metadata.name\": expected <field>=<value>, <field>==<value> or <field>!=<value>",
        );
        check_field_invalid(
            Kind::Event,
            "metadata.name=a=b",
            "invalid field selector value \"a=b\": write '=' inside a value as '\\='",
        );
        check_field_invalid(
            Kind::Event,
            "metadata.name=a\\b",
            "invalid field selector value \"a\\b\": only '\\\\', '\\,' and '\\=' are escape sequences",
        );
        check_field_invalid(
            Kind::Event,
            "metadata.name=a\\",
            "invalid field selector value \"a\\\": only '\\\\', '\\,' and '\\=' are escape sequences",
        );
    }

    fn check_name(selector: &str, expected: Option<&str>) {
        let parsed = FieldSelector::parse(Kind::PersistentVolumeClaim, selector).unwrap();
        assert_eq!(parsed.name(), expected, "{selector:?}");
    }

    #[test]
    fn field_selector_names_the_object() {
        check_name("", None);
        check_name("metadata.name=data", Some("data"));
        check_name("metadata.namespace=prod,metadata.name==data", Some("data"));
        check_name("metadata.name!=data", None);
        check_name("metadata.namespace=data", None);
    }

    /// A requirement as the property test generates it, rendered in one of
    /// its spellings and evaluated independently of the parser.
    #[derive(Clone, Debug)]
    enum Generated {
        Equals(String, String, &'static str),
        NotEquals(String, String),
        In(String, Vec<String>),
        NotIn(String, Vec<String>),
        Exists(String),
        DoesNotExist(String),
    }

    impl Generated {
        fn render(&self, space: &str) -> String {
            let list = |values: &[String]| values.join(&format!("{space},{space}"));
            match self {
                Generated::Equals(k, v, op) => format!("{k}{space}{op}{space}{v}"),
                Generated::NotEquals(k, v) => format!("{k}{space}!={space}{v}"),
                Generated::In(k, vs) => format!("{k} in{space}({space}{}{space})", list(vs)),
                Generated::NotIn(k, vs) => format!("{k} notin{space}({}){space}", list(vs)),
                Generated::Exists(k) => format!("{space}{k}"),
                Generated::DoesNotExist(k) => format!("!{space}{k}"),
            }
        }

        fn holds(&self, labels: &BTreeMap<String, String>) -> bool {
            let value = |k: &String| labels.get(k);
            match self {
                Generated::Equals(k, v, _) => value(k) == Some(v),
                Generated::NotEquals(k, v) => value(k) != Some(v),
                Generated::In(k, vs) => value(k).is_some_and(|x| vs.contains(x)),
                Generated::NotIn(k, vs) => !value(k).is_some_and(|x| vs.contains(x)),
                Generated::Exists(k) => value(k).is_some(),
                Generated::DoesNotExist(k) => value(k).is_none(),
            }
        }
    }

    fn small_key() -> impl Strategy<Value = String> + Clone {
        prop::sample::select(vec!["a", "b", "app.kubernetes.io/name", "tier"])
            .prop_map(String::from)
    }

    fn small_value() -> impl Strategy<Value = String> + Clone {
        prop::sample::select(vec!["x", "y", "gold", "v1.2_3-rc"]).prop_map(String::from)
    }

    fn generated() -> impl Strategy<Value = Generated> {
        let values = prop::collection::vec(small_value(), 1..4);
        prop_oneof![
            (
                small_key(),
                small_value(),
                prop::sample::select(vec!["=", "=="])
            )
                .prop_map(|(k, v, op)| Generated::Equals(k, v, op)),
            (small_key(), small_value()).prop_map(|(k, v)| Generated::NotEquals(k, v)),
            (small_key(), values.clone()).prop_map(|(k, vs)| Generated::In(k, vs)),
            (small_key(), values).prop_map(|(k, vs)| Generated::NotIn(k, vs)),
            small_key().prop_map(Generated::Exists),
            small_key().prop_map(Generated::DoesNotExist),
        ]
    }

    proptest! {
        #[test]
        fn parsing_never_panics(s in "\\PC*") {
            let _ = LabelSelector::parse(&s);
            let _ = FieldSelector::parse(Kind::Event, &s);
        }

        #[test]
        fn parsing_never_panics_on_selector_like_text(s in "[a-z!=,() \\\\/.]{0,24}") {
            let _ = LabelSelector::parse(&s);
            let _ = FieldSelector::parse(Kind::Pod, &s);
        }

        #[test]
        fn rendered_selectors_match_like_their_requirements(
            requirements in prop::collection::vec(generated(), 0..5),
            space in prop::sample::select(vec!["", " ", "  \t"]),
            labels in prop::collection::btree_map(small_key(), small_value(), 0..4),
        ) {
            let rendered: Vec<String> = requirements.iter().map(|r| r.render(space)).collect();
            let text = rendered.join(&format!("{space},"));
            let selector = LabelSelector::parse(&text).unwrap();
            let expected = requirements.iter().all(|r| r.holds(&labels));
            prop_assert_eq!(selector.matches_btree(Some(&labels)), expected, "{}", text);
        }
    }
}
