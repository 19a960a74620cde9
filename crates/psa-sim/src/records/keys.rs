//! The ids of the records a company owns, and the names a ticket shows of them, as functions of
//! the company and the record's rank within it (1-based): a ticket is generated before any
//! record and rendered from itself alone, yet its contact, site, agreement, configuration,
//! project and opportunity are records the other resources serve. The generator gives every
//! company at least as many of each as a ticket may name ([`TICKET_RANKS`]).
//!
//! Each kind has its own range (`base + company id × 10 + rank`, company ids being below 1,000
//! and ranks below 10), so the ids of different resources do not meet.

use crate::data::{Company, FIRST_NAMES, LAST_NAMES};

/// SplitMix64: a cheap generator for values derived from ids.
pub(crate) struct Mix(pub u64);

impl Mix {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A kind of record a company owns, by its id range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Owned {
    Location = 100_000,
    Contact = 200_000,
    Configuration = 300_000,
    Contract = 400_000,
    Project = 500_000,
    Opportunity = 600_000,
}

impl Owned {
    /// The id of `company`'s `rank`th record of this kind.
    pub(crate) fn id(self, company: u64, rank: u64) -> u64 {
        self as u64 + company * 10 + rank
    }

    fn mix(self, company: u64, rank: u64) -> Mix {
        Mix(self.id(company, rank).wrapping_mul(0x2545_F491_4F6C_DD1D))
    }
}

/// How many of each kind every company has at least, so that a ticket may name any rank up to
/// these: contacts, configurations; one location, contract, project, opportunity.
pub(crate) struct TicketRanks {
    pub contacts: u64,
    pub configurations: u64,
}

pub(crate) const TICKET_RANKS: TicketRanks = TicketRanks {
    contacts: 3,
    configurations: 4,
};

/// A contact's first and last name, and email address.
pub(crate) fn contact(company: &Company, rank: u64) -> (&'static str, &'static str, String) {
    let mut m = Owned::Contact.mix(company.id, rank);
    let first = FIRST_NAMES[m.below(FIRST_NAMES.len() as u64) as usize];
    let last = LAST_NAMES[m.below(LAST_NAMES.len() as u64) as usize];
    let email = format!(
        "{}.{}{rank}@{}.example",
        first.to_lowercase(),
        last.to_lowercase(),
        company.identifier.to_lowercase()
    );
    (first, last, email)
}

/// The index of a contract's type in [`super::names::CONTRACT_TYPES`].
pub(crate) fn contract_type(company: u64, rank: u64) -> usize {
    Owned::Contract
        .mix(company, rank)
        .below(super::names::CONTRACT_TYPES.len() as u64) as usize
}

/// A contract's name (`Acme Corp Block Hours`, then `… 2`).
pub(crate) fn contract_name(company: &Company, rank: u64) -> String {
    let kind = super::names::CONTRACT_TYPES[contract_type(company.id, rank)];
    match rank {
        1 => format!("{} {kind}", company.name),
        _ => format!("{} {kind} {rank}", company.name),
    }
}

/// A location's name: the first is the main office.
pub(crate) fn location_name(rank: u64) -> &'static str {
    super::names::LOCATION_NAMES[(rank as usize - 1) % super::names::LOCATION_NAMES.len()]
}
