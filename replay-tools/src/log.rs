//! Reading the log for people and pipes: `export` (a stream, a category,
//! a range of positions, some types) and `tail` (follow the head), both as
//! JSON Lines of the events exactly as stored.

use deadpool_postgres::Pool;
use event_schemas::RecordedEvent;
use event_store::postgres::EVENT_COLUMNS;
use tokio_postgres::types::ToSql;

use crate::VerifyError;

/// Events read per query.
const PAGE: i64 = 5000;

/// Which events to read.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// One stream.
    pub stream: Option<String>,
    /// One stream category (`app`, `api_key`...).
    pub category: Option<String>,
    /// Types: exact (`api_key.rotated`) or a family (`api_key.*`).
    pub types: Vec<String>,
    /// After this position.
    pub after: u64,
    /// Up to and including this position.
    pub upto: Option<u64>,
}

impl Selection {
    /// Whether `e` is selected (the same test the SQL makes).
    pub fn matches(&self, e: &RecordedEvent) -> bool {
        self.stream.as_ref().is_none_or(|s| &e.stream_id == s)
            && self.category.as_ref().is_none_or(|c| e.category() == c)
            && type_matches(&self.types, &e.event_type)
            && e.global_position > self.after
            && self.upto.is_none_or(|u| e.global_position <= u)
    }
}

/// Whether `event_type` is one of `types` (`family.*` a whole family; none
/// means every type).
pub fn type_matches(types: &[String], event_type: &str) -> bool {
    types.is_empty()
        || types.iter().any(|t| match t.strip_suffix(".*") {
            Some(family) => event_type.split_once('.').is_some_and(|(f, _)| f == family),
            None => t == event_type,
        })
}

/// Reads the next page of `sel` after `after`.
pub async fn page(
    pool: &Pool,
    sel: &Selection,
    after: u64,
) -> Result<Vec<RecordedEvent>, VerifyError> {
    let like = |prefix: &str| prefix.replace('_', "\\_");
    let mut conds = vec!["global_position > $1".to_owned()];
    let mut params: Vec<Box<dyn ToSql + Sync + Send>> = vec![Box::new(after as i64)];
    let mut param = |v: Box<dyn ToSql + Sync + Send>| {
        params.push(v);
        format!("${}", params.len())
    };
    if let Some(s) = &sel.stream {
        conds.push(format!("stream_id = {}", param(Box::new(s.clone()))));
    }
    if let Some(c) = &sel.category {
        conds.push(format!(
            "stream_id LIKE {}",
            param(Box::new(format!("{}-%", like(c))))
        ));
    }
    if let Some(u) = sel.upto {
        conds.push(format!("global_position <= {}", param(Box::new(u as i64))));
    }
    if !sel.types.is_empty() {
        let exact: Vec<String> = sel
            .types
            .iter()
            .filter(|t| !t.ends_with(".*"))
            .cloned()
            .collect();
        let families: Vec<String> = sel
            .types
            .iter()
            .filter_map(|t| t.strip_suffix(".*").map(|f| format!("{}.%", like(f))))
            .collect();
        let (a, b) = (param(Box::new(exact)), param(Box::new(families)));
        conds.push(format!(
            "(event_type = ANY({a}) OR event_type LIKE ANY({b}))"
        ));
    }
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE {} ORDER BY global_position LIMIT {PAGE}",
        conds.join(" AND ")
    );
    let client = pool.get().await?;
    let refs: Vec<&(dyn ToSql + Sync)> =
        params.iter().map(|p| &**p as &(dyn ToSql + Sync)).collect();
    let rows = client.query(&sql, &refs).await?;
    rows.iter()
        .map(event_store::postgres::decode_row)
        .collect::<Result<_, _>>()
        .map_err(VerifyError::from)
}

/// The head position.
pub async fn head(pool: &Pool) -> Result<u64, VerifyError> {
    let client = pool.get().await?;
    let p: i64 = client
        .query_one("SELECT position FROM log_head WHERE id", &[])
        .await?
        .get(0);
    Ok(p as u64)
}
