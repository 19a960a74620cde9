//! Every resource the simulator serves besides tickets: companies, contacts, configurations,
//! projects, time entries and the rest, so that a filter backfill over any (PSA, entity type)
//! pair with a compile table runs end to end against the simulator, with each PSA's field names
//! and query syntax.
//!
//! One neutral record per real-world object ([`model`]) renders into the three PSA views, as a
//! [`crate::Ticket`] does: a company is the same company on every PSA, a ConnectWise project
//! ticket is an Autotask task. The records are generated once per seed, after the tickets and
//! with a generator of their own ([`gen`]), so the tickets of a seed did not change and a few
//! thousand records cost the same next to any number of tickets. They are rendered once (they
//! are few), and each dialect module serves a [`Resource`] the way it serves tickets: one
//! list/count/get implementation per PSA, tickets being one more resource ([`RowSet`]).
//!
//! Map: [`model`] (the records), [`gen`] and `gen_work` (generation, drawing on [`names`]),
//! [`keys`] (the ids of what a company owns, which tickets refer to), [`tickets`] (the ticket
//! fields a [`crate::Ticket`] does not hold), [`fields`] (the compile tables' field lists),
//! [`cw`], [`at`], [`halo`] (each PSA's views and resource list), `tests`.

pub(crate) mod at;
pub(crate) mod cw;
pub(crate) mod fields;
mod gen;
mod gen_work;
pub(crate) mod halo;
mod keys;
mod model;
mod names;
#[cfg(test)]
mod tests;
pub(crate) mod tickets;

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::Value;

use crate::data::{Dataset, View};
pub(crate) use gen::{Base, Records};

/// The kind of a field's values (the compile tables' `ValueKind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Number,
    Text,
    Bool,
    DateTime,
}

/// A resource's fields: `(path, kind)`, as its compile table lists them.
pub(crate) type Fields = &'static [(&'static str, Kind)];

/// The rows of a resource's records in one view.
pub(crate) type Render = fn(&Records) -> Vec<Value>;

/// One resource of one PSA.
#[derive(Debug)]
pub(crate) struct Resource {
    /// ConnectWise path under the API root (`/company/companies`), Autotask entity
    /// (`Companies`), HaloPSA path under `/api` (`/client`).
    pub endpoint: &'static str,
    /// The record's name in error messages (`Company`, `ConfigurationItem`).
    pub noun: &'static str,
    /// The compile table's fields.
    pub fields: Fields,
    /// `None` for tickets (the data set's own rows).
    pub render: Option<Render>,
    /// HaloPSA: the key of a paged list answer (`{"record_count", key: […]}`); `None` for a
    /// resource answering a bare array of every row. Unused elsewhere.
    pub halo_key: Option<&'static str>,
}

impl Resource {
    pub(crate) fn is_tickets(&self) -> bool {
        self.render.is_none()
    }
}

/// The resources of one PSA, tickets first.
pub(crate) fn resources(view: View) -> &'static [Resource] {
    match view {
        View::ConnectWise => cw::RESOURCES,
        View::Autotask => at::RESOURCES,
        View::Halo => halo::RESOURCES,
    }
}

/// The index of the resource at `endpoint` (Autotask entities ignore case).
pub(crate) fn find(view: View, endpoint: &str) -> Option<usize> {
    resources(view).iter().position(|r| match view {
        View::Autotask => r.endpoint.eq_ignore_ascii_case(endpoint),
        _ => r.endpoint == endpoint,
    })
}

/// Rendered rows with their ids, ascending.
#[derive(Clone, Debug, Default)]
pub(crate) struct Table {
    ids: Vec<u64>,
    rows: Vec<Value>,
}

impl Table {
    fn new(mut rows: Vec<Value>) -> Table {
        rows.sort_by_key(|r| r["id"].as_u64().unwrap_or_default());
        let ids = rows
            .iter()
            .map(|r| r["id"].as_u64().unwrap_or_default())
            .collect();
        Table { ids, rows }
    }
}

/// Every non-ticket resource of every PSA, rendered, parallel to [`resources`].
#[derive(Clone, Debug, Default)]
pub(crate) struct Tables {
    cw: Vec<Table>,
    at: Vec<Table>,
    halo: Vec<Table>,
}

impl Tables {
    pub(crate) fn render(records: &Records) -> Tables {
        let render = |view| {
            resources(view)
                .iter()
                .map(|r| {
                    r.render
                        .map_or_else(Table::default, |f| Table::new(f(records)))
                })
                .collect()
        };
        Tables {
            cw: render(View::ConnectWise),
            at: render(View::Autotask),
            halo: render(View::Halo),
        }
    }

    fn get(&self, view: View, index: usize) -> &Table {
        let tables = match view {
            View::ConnectWise => &self.cw,
            View::Autotask => &self.at,
            View::Halo => &self.halo,
        };
        &tables[index]
    }
}

/// The rows of one resource in one view, in ascending id order: what a list, count or get
/// reads, whether the resource is the tickets or a table, with the writes made through the
/// API laid over them (see `crate::writes`).
pub(crate) struct RowSet<'a> {
    data: &'a Dataset,
    view: View,
    /// `None`: the tickets.
    table: Option<&'a Table>,
    /// Tickets only: the rows written since the data set was generated, by id (`None` when
    /// nothing was written, so an unwritten simulator pays one branch per row).
    written: Option<&'a BTreeMap<u64, Value>>,
    /// Tables only: rows created through the API after the table's own, ids ascending above
    /// every id of the table.
    appended: &'a [Value],
}

fn id_of(row: &Value) -> u64 {
    row["id"].as_u64().unwrap_or_default()
}

impl<'a> RowSet<'a> {
    /// The same rows with the written tickets (`written`) or created rows (`appended`) laid over them.
    pub(crate) fn with_writes(
        mut self,
        written: Option<&'a BTreeMap<u64, Value>>,
        appended: &'a [Value],
    ) -> RowSet<'a> {
        if self.table.is_none() {
            self.written = written.filter(|w| !w.is_empty());
        } else {
            self.appended = appended;
        }
        self
    }

    pub(crate) fn len(&self) -> usize {
        match self.table {
            Some(t) => t.rows.len() + self.appended.len(),
            None => self.data.tickets.len(),
        }
    }

    pub(crate) fn id(&self, i: usize) -> u64 {
        match self.table {
            Some(t) => t
                .ids
                .get(i)
                .copied()
                .unwrap_or_else(|| id_of(&self.appended[i - t.ids.len()])),
            None => self.data.tickets[i].id,
        }
    }

    pub(crate) fn row(&self, i: usize) -> Cow<'a, Value> {
        match self.table {
            Some(t) => Cow::Borrowed(
                t.rows
                    .get(i)
                    .unwrap_or_else(|| &self.appended[i - t.rows.len()]),
            ),
            None => match self.written(i) {
                Some(row) => Cow::Borrowed(row),
                None => self.data.row(self.view, i),
            },
        }
    }

    /// The written row of ticket number `i`, if it was written.
    pub(crate) fn written(&self, i: usize) -> Option<&'a Value> {
        self.written?.get(&self.data.tickets[i].id)
    }

    /// `(index, row)` from index `from` on.
    pub(crate) fn rows_from(
        &self,
        from: usize,
    ) -> impl Iterator<Item = (usize, Cow<'a, Value>)> + '_ {
        (from..self.len()).map(move |i| (i, self.row(i)))
    }

    /// The index of the first row whose id is above `id`.
    pub(crate) fn first_after(&self, id: i64) -> usize {
        let above = |x: u64| i64::try_from(x).unwrap_or(i64::MAX) > id;
        match self.table {
            Some(t) => match t.ids.partition_point(|x| !above(*x)) {
                p if p < t.ids.len() => p,
                p => p + self.appended.partition_point(|r| !above(id_of(r))),
            },
            None => self.data.first_after(id),
        }
    }

    /// The index of the row with `id`.
    pub(crate) fn index_of(&self, id: u64) -> Option<usize> {
        match self.table {
            Some(t) => t.ids.binary_search(&id).ok().or_else(|| {
                let k = self.appended.binary_search_by_key(&id, id_of).ok()?;
                Some(t.ids.len() + k)
            }),
            None => self.data.index_of(id),
        }
    }
}

impl Dataset {
    /// The rows of resource number `index` of [`resources`]`(view)`.
    pub(crate) fn rows(&self, view: View, index: usize) -> RowSet<'_> {
        let table = resources(view)[index]
            .render
            .map(|_| self.tables.get(view, index));
        RowSet {
            data: self,
            view,
            table,
            written: None,
            appended: &[],
        }
    }

    /// The wire rows of one resource in ascending id order, exactly as its list endpoint
    /// renders them: `psa` is `connectwise`, `autotask` or `halo` (or `halopsa`), `endpoint`
    /// a ConnectWise path under the API root (`/company/companies`), an Autotask entity
    /// (`Companies`, any case) or a HaloPSA path under `/api` (`/client`); tickets too
    /// (`/service/tickets`, `Tickets`, `/tickets`). `None` for an unknown PSA or endpoint.
    pub fn resource_rows(&self, psa: &str, endpoint: &str) -> Option<Vec<Value>> {
        let view = View::from_psa(psa)?;
        let rows = self.rows(view, find(view, endpoint)?);
        Some(rows.rows_from(0).map(|(_, r)| r.into_owned()).collect())
    }
}
