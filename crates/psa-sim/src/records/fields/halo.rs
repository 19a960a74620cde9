//! HaloPSA: the compile tables' fields, per resource.

use crate::records::Fields;
use crate::records::Kind::{Bool, DateTime, Number, Text};

/// `/tickets`.
pub(crate) const TICKET: Fields = &[
    ("id", Number),
    ("summary", Text),
    ("details", Text),
    ("status_id", Number),
    ("tickettype_id", Number),
    ("priority_id", Number),
    ("sla_id", Number),
    ("client_id", Number),
    ("client_name", Text),
    ("site_id", Number),
    ("user_id", Number),
    ("agent_id", Number),
    ("team", Text),
    ("category_1", Text),
    ("category_2", Text),
    ("category_3", Text),
    ("category_4", Text),
    ("dateoccurred", DateTime),
    ("lastactiondate", DateTime),
    ("dateclosed", DateTime),
    ("hasbeenclosed", Bool),
    ("respondbydate", DateTime),
    ("fixbydate", DateTime),
    ("startdate", DateTime),
    ("parent_id", Number),
    ("onhold", Bool),
    ("impact", Number),
    ("urgency", Number),
];

pub(crate) const PROJECT: Fields = &[
    ("id", Number),
    ("summary", Text),
    ("details", Text),
    ("status_id", Number),
    ("tickettype_id", Number),
    ("priority_id", Number),
    ("client_id", Number),
    ("client_name", Text),
    ("site_id", Number),
    ("agent_id", Number),
    ("team", Text),
    ("dateoccurred", DateTime),
    ("lastactiondate", DateTime),
    ("startdate", DateTime),
    ("targetdate", DateTime),
    ("dateclosed", DateTime),
    ("hasbeenclosed", Bool),
    ("projecttimepercentage", Number),
];

pub(crate) const OPPORTUNITY: Fields = &[
    ("id", Number),
    ("summary", Text),
    ("status_id", Number),
    ("tickettype_id", Number),
    ("client_id", Number),
    ("client_name", Text),
    ("agent_id", Number),
    ("team", Text),
    ("opportunityvalue", Number),
    ("dateoccurred", DateTime),
    ("lastactiondate", DateTime),
    ("dateclosed", DateTime),
    ("hasbeenclosed", Bool),
];

pub(crate) const COMPANY: Fields = &[
    ("id", Number),
    ("name", Text),
    ("toplevel_id", Number),
    ("toplevel_name", Text),
    ("accountsid", Text),
    ("website", Text),
    ("phonenumber", Text),
    ("inactive", Bool),
    ("is_vip", Bool),
];

pub(crate) const CONTACT: Fields = &[
    ("id", Number),
    ("name", Text),
    ("firstname", Text),
    ("surname", Text),
    ("emailaddress", Text),
    ("phonenumber", Text),
    ("jobtitle", Text),
    ("client_id", Number),
    ("client_name", Text),
    ("site_id", Number),
    ("site_name", Text),
    ("inactive", Bool),
    ("isimportantcontact", Bool),
];

pub(crate) const CONFIGURATION: Fields = &[
    ("id", Number),
    ("inventory_number", Text),
    ("key_field", Text),
    ("client_id", Number),
    ("client_name", Text),
    ("site_id", Number),
    ("site_name", Text),
    ("assettype_id", Number),
    ("assettype_name", Text),
    ("status_id", Number),
    ("supplier_id", Number),
    ("inactive", Bool),
    ("warranty_end", DateTime),
];

pub(crate) const RESOURCE: Fields = &[
    ("id", Number),
    ("name", Text),
    ("email", Text),
    ("initials", Text),
    ("team", Text),
    ("isdisabled", Bool),
];

pub(crate) const CONTRACT: Fields = &[
    ("id", Number),
    ("ref", Text),
    ("client_id", Number),
    ("client_name", Text),
    ("billing_description", Text),
    ("contract_status", Text),
    ("expired", Bool),
    ("start_date", DateTime),
    ("end_date", DateTime),
];

pub(crate) const TIME_ENTRY: Fields = &[
    ("id", Number),
    ("subject", Text),
    ("note", Text),
    ("agent_id", Number),
    ("ticket_id", Number),
    ("client_id", Number),
    ("client_name", Text),
    ("event_type", Number),
    ("timetaken", Number),
    ("start_date", DateTime),
    ("end_date", DateTime),
];

pub(crate) const APPOINTMENT: Fields = &[
    ("id", Number),
    ("subject", Text),
    ("agent_id", Number),
    ("client_id", Number),
    ("client_name", Text),
    ("ticket_id", Number),
    ("appointment_type", Number),
    ("complete_status", Number),
    ("start_date", DateTime),
    ("end_date", DateTime),
];

pub(crate) const TEAM: Fields = &[
    ("id", Number),
    ("name", Text),
    ("department_id", Number),
    ("inactive", Bool),
];

pub(crate) const ROLE: Fields = &[("id", Number), ("name", Text), ("isagent", Bool)];

pub(crate) const COMPANY_LOCATION: Fields = &[
    ("id", Number),
    ("name", Text),
    ("client_id", Number),
    ("client_name", Text),
    ("phonenumber", Text),
    ("inactive", Bool),
];

pub(crate) const PRODUCT: Fields = &[
    ("id", Number),
    ("name", Text),
    ("description", Text),
    ("baseprice", Number),
    ("costprice", Number),
    ("supplier_id", Number),
    ("inactive", Bool),
];
