//! Compile tables: per PSA and entity type, the fields a filter may name (with the values they
//! take, passed to `neo_domain::filter::parse`), what each alias means on that entity, and how
//! an operator recognises a record. Names match exactly on ConnectWise and Halo,
//! case-insensitively on Autotask (as its API does).
//!
//! A table exists exactly where the support matrix ([`crate::support`]) says `filters`; a test
//! there holds the two together. The tables are data, not code, so that every rule of the
//! compilers and of the reference evaluator applies to every entity the same way: an entity
//! type gains filters by gaining a table here (and a resource in psa-sim to test it against).
//!
//! Aliases (docs/psa.md §6.4) are per entity: `$created` is `dateEntered` on a ConnectWise
//! company but `createDateTime` on an Autotask project; an alias with no meaning on an entity
//! (`$closed` on a contact) is refused at validation, naming the entity and the PSA.

mod autotask;
mod connectwise;
mod halo;

use neo_domain::backfill::EntityType;
use neo_domain::filter::{Alias, FieldCatalogue, ValueKind};

use crate::Psa;

/// The paths of an alias on one entity: for numbers (and every non-string value), and for
/// strings. `None` where no native field holds that form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Target {
    pub id: Option<&'static str>,
    pub name: Option<&'static str>,
}

impl Target {
    pub(crate) const NONE: Target = Target {
        id: None,
        name: None,
    };

    /// One path for every form (dates, flags).
    pub(crate) const fn same(p: &'static str) -> Target {
        Target {
            id: Some(p),
            name: Some(p),
        }
    }

    /// A reference: an id path and a name path.
    pub(crate) const fn by_kind(id: Option<&'static str>, name: Option<&'static str>) -> Target {
        Target { id, name }
    }

    fn exists(self) -> bool {
        self.id.is_some() || self.name.is_some()
    }
}

/// What the aliases mean on one entity (`$id` is `id` everywhere).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Aliases {
    pub created: Target,
    pub updated: Target,
    pub closed: Target,
    pub company: Target,
    pub status: Target,
    pub priority: Target,
    pub queue: Target,
    pub assignee: Target,
}

impl Aliases {
    /// No alias but `$id`; set the others with struct update syntax.
    pub(crate) const NONE: Aliases = Aliases {
        created: Target::NONE,
        updated: Target::NONE,
        closed: Target::NONE,
        company: Target::NONE,
        status: Target::NONE,
        priority: Target::NONE,
        queue: Target::NONE,
        assignee: Target::NONE,
    };
}

/// How a HaloPSA list answer holds its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HaloList {
    /// `{"record_count": N, "<key>": [...]}` with `pageinate=true`.
    Paged(&'static str),
    /// A bare array of every row: the resource does not page.
    Bare,
}

/// The compile table of one entity type on one PSA.
#[derive(Debug)]
pub struct Catalogue {
    pub(crate) psa: Psa,
    pub(crate) entity: EntityType,
    pub(crate) fields: Fields,
    pub(crate) aliases: Aliases,
    /// The fields an operator knows a record by, joined with a space (an item's summary).
    pub(crate) title: &'static [&'static str],
    /// The number shown beside the id (Autotask `ticketNumber`), if any.
    pub(crate) number: Option<&'static str>,
    /// Custom fields are pushed down (ConnectWise `customFieldConditions`, Autotask UDFs):
    /// tickets only; elsewhere they are evaluated locally.
    pub(crate) custom_push: bool,
    /// HaloPSA only: the shape of a list answer.
    pub(crate) halo_list: HaloList,
}

/// The fields of a table: (path, kind).
pub(crate) type Fields = &'static [(&'static str, ValueKind)];

impl Catalogue {
    /// A table with the common defaults (no number, custom fields evaluated locally, not a
    /// HaloPSA list); the per-PSA files set the rest with struct update syntax.
    pub(crate) const fn new(
        psa: Psa,
        entity: EntityType,
        fields: Fields,
        aliases: Aliases,
        title: &'static [&'static str],
    ) -> Catalogue {
        Catalogue {
            psa,
            entity,
            fields,
            aliases,
            title,
            number: None,
            custom_push: false,
            halo_list: HaloList::Bare,
        }
    }

    /// The fields and their kinds, in catalogue order.
    pub fn fields(&self) -> impl Iterator<Item = (&'static str, ValueKind)> + '_ {
        self.fields.iter().copied()
    }

    /// The aliases that mean something on this entity, spelled as in a filter (`$id` first).
    pub fn aliases(&self) -> impl Iterator<Item = &'static str> + '_ {
        ALIASES
            .iter()
            .filter(|(a, _)| self.target(*a).is_some())
            .map(|(_, s)| *s)
    }

    pub fn psa(&self) -> Psa {
        self.psa
    }

    pub fn entity(&self) -> EntityType {
        self.entity
    }

    /// The (id, name) paths of an alias spelled as in a filter (`"$company"`); `None` when it
    /// means nothing here.
    pub fn alias_paths(&self, alias: &str) -> Option<(Option<&'static str>, Option<&'static str>)> {
        let a = Alias::parse(alias)?;
        self.target(a).map(|t| (t.id, t.name))
    }

    /// HaloPSA: how a list answer of this resource holds its rows.
    pub fn halo_list(&self) -> HaloList {
        self.halo_list
    }

    /// The paths of `alias` on this entity; `None` when it means nothing here.
    pub(crate) fn target(&self, alias: Alias) -> Option<Target> {
        let a = &self.aliases;
        let t = match alias {
            Alias::Id => Target::same("id"),
            Alias::Created => a.created,
            Alias::Updated => a.updated,
            Alias::Closed => a.closed,
            Alias::Company => a.company,
            Alias::Status => a.status,
            Alias::Priority => a.priority,
            Alias::Queue => a.queue,
            Alias::Assignee => a.assignee,
        };
        t.exists().then_some(t)
    }
}

const ALIASES: [(Alias, &str); 9] = [
    (Alias::Id, "$id"),
    (Alias::Created, "$created"),
    (Alias::Updated, "$updated"),
    (Alias::Closed, "$closed"),
    (Alias::Company, "$company"),
    (Alias::Status, "$status"),
    (Alias::Priority, "$priority"),
    (Alias::Queue, "$queue"),
    (Alias::Assignee, "$assignee"),
];

impl FieldCatalogue for Catalogue {
    fn native_field(&self, path: &str) -> Option<ValueKind> {
        self.fields
            .iter()
            .find(|(name, _)| {
                if self.psa == Psa::Autotask {
                    name.eq_ignore_ascii_case(path)
                } else {
                    *name == path
                }
            })
            .map(|(_, kind)| *kind)
    }

    fn alias(&self, alias: Alias) -> Result<(), String> {
        if self.target(alias).is_some() {
            return Ok(());
        }
        let known: Vec<&str> = self.aliases().collect();
        let name = ALIASES
            .iter()
            .find(|(a, _)| *a == alias)
            .map_or("", |(_, s)| *s);
        Err(format!(
            "{name} means nothing on {} entities of {} (their aliases: {})",
            self.entity,
            self.psa.as_str(),
            known.join(", ")
        ))
    }
}

/// The compile table of `entity` on `psa`; `None` where filters on it are not supported.
pub fn table(psa: Psa, entity: EntityType) -> Option<&'static Catalogue> {
    let tables: &[&'static Catalogue] = match psa {
        Psa::ConnectWise => connectwise::TABLES,
        Psa::Autotask => autotask::TABLES,
        Psa::Halo => halo::TABLES,
    };
    tables.iter().copied().find(|c| c.entity == entity)
}

/// The ticket table of `psa` (every PSA has one).
pub fn tickets(psa: Psa) -> &'static Catalogue {
    table(psa, EntityType::Ticket).expect("every PSA has a ticket table")
}

/// The catalogue a filter on `entity` is validated with on `psa`.
pub fn catalogue(psa: Psa, entity: EntityType) -> Option<&'static dyn FieldCatalogue> {
    table(psa, entity).map(|c| c as &'static dyn FieldCatalogue)
}

#[cfg(test)]
mod tests;
