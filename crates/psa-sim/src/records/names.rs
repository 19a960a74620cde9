//! The vocabularies the record generator draws names and picklist values from. Picklists are
//! 1-based: a value's id is its position plus one.

pub(super) const ROLES: [(&str, f64, bool); 8] = [
    ("Technician", 95.0, false),
    ("Senior Technician", 125.0, false),
    ("Network Engineer", 150.0, false),
    ("Project Manager", 140.0, false),
    ("Account Manager", 110.0, false),
    ("After Hours", 190.0, false),
    ("Administrator", 0.0, true),
    ("Dispatcher", 85.0, true),
];
pub(super) const TEAM_NAMES: [&str; 6] = [
    "Help Desk",
    "Escalations",
    "Projects",
    "Alerts",
    "Onboarding",
    "Network Operations",
];
pub(super) const TITLES: [&str; 6] = [
    "Service Desk Technician",
    "Network Engineer",
    "Project Manager",
    "Account Manager",
    "Service Manager",
    "Systems Engineer",
];
/// The MSP's own locations and departments.
pub(super) const LOCATIONS: [&str; 2] = ["Head Office", "Remote"];
pub(super) const MSP_DEPARTMENTS: [&str; 3] = ["Service Desk", "Projects", "Sales"];
pub(super) const TERRITORIES: [&str; 4] = ["Pacific", "Mountain", "Central", "Eastern"];
pub(super) const MARKETS: [&str; 6] = [
    "Healthcare",
    "Legal",
    "Manufacturing",
    "Retail",
    "Education",
    "Finance",
];
pub(super) const COMPANY_STATUSES: [&str; 4] =
    ["Active", "Inactive", "Credit Hold", "Not Approved"];
pub(super) const TOP_LEVELS: [&str; 3] = ["Managed Services", "Break-Fix", "Projects Only"];
/// `(city, state, zip prefix, area code)`.
pub(super) const CITIES: [(&str, &str, &str, &str); 8] = [
    ("Seattle", "WA", "981", "206"),
    ("Portland", "OR", "972", "503"),
    ("Denver", "CO", "802", "303"),
    ("Austin", "TX", "787", "512"),
    ("Chicago", "IL", "606", "312"),
    ("Boston", "MA", "021", "617"),
    ("Atlanta", "GA", "303", "404"),
    ("Phoenix", "AZ", "850", "602"),
];
pub(super) const STREETS: [&str; 5] = ["Main St", "Oak Ave", "Pine Rd", "Market St", "Harbor Blvd"];
pub(super) const LOCATION_NAMES: [&str; 3] = ["Main Office", "Warehouse", "Branch 2"];
pub(super) const CONTACT_TITLES: [&str; 6] = [
    "Office Manager",
    "IT Coordinator",
    "CEO",
    "CFO",
    "Receptionist",
    "Operations Lead",
];
pub(super) const DEPARTMENTS: [&str; 4] = ["Accounting", "Operations", "Sales", "Executive"];
pub(super) const RELATIONSHIPS: [&str; 4] = [
    "Decision Maker",
    "Technical Contact",
    "Billing Contact",
    "End User",
];
/// `(type, name prefix, models, operating systems)`.
pub(super) const CONFIG_TYPES: [(&str, &str, [&str; 2], &[&str]); 6] = [
    (
        "Workstation",
        "WS",
        ["OptiPlex 7010", "ThinkCentre M70q"],
        &["Windows 11 Pro", "Windows 10 Pro"],
    ),
    (
        "Laptop",
        "LT",
        ["Latitude 5440", "ThinkPad T14"],
        &["Windows 11 Pro", "macOS 14"],
    ),
    (
        "Server",
        "SRV",
        ["PowerEdge R650", "ProLiant DL380"],
        &["Windows Server 2022", "Ubuntu 22.04"],
    ),
    ("Firewall", "FW", ["FortiGate 60F", "SonicWall TZ370"], &[]),
    ("Switch", "SW", ["Aruba 2930F", "Meraki MS120"], &[]),
    ("Printer", "PRN", ["LaserJet M404", "Brother HL-L8360"], &[]),
];
pub(super) const CONFIG_STATUSES: [&str; 4] = ["Active", "Inactive", "In Repair", "Retired"];
pub(super) const OPPORTUNITY_NAMES: [&str; 6] = [
    "New laptops",
    "Managed services renewal",
    "Firewall upgrade",
    "Microsoft 365 licences",
    "Backup appliance",
    "Wi-Fi expansion",
];
pub(super) const OPPORTUNITY_STATUSES: [&str; 4] = ["Open", "Won", "Lost", "No Decision"];
pub(super) const STAGES: [&str; 5] = ["Prospect", "Qualified", "Proposal", "Negotiation", "Closed"];
pub(super) const OPPORTUNITY_TYPES: [&str; 3] = ["New Business", "Renewal", "Upsell"];
pub(super) const SOURCES: [&str; 4] = ["Referral", "Website", "Existing Customer", "Trade Show"];
pub(super) const CONTRACT_TYPES: [&str; 4] = [
    "Managed Services",
    "Block Hours",
    "Time and Materials",
    "Retainer",
];
pub(super) const CONTRACT_STATUSES: [&str; 4] = ["Active", "Cancelled", "Expired", "Inactive"];
pub(super) const BILLING_CYCLES: [&str; 3] = ["Monthly", "Quarterly", "Annually"];
pub(super) const UNITS: [&str; 3] = ["Amount", "Hours", "Incidents"];
pub(super) const SERVICES: [&str; 5] = [
    "Managed Workstation",
    "Managed Server",
    "Cloud Backup",
    "Security Suite",
    "Help Desk Seat",
];
pub(super) const BILLABLE: [&str; 4] = ["Billable", "DoNotBill", "NoCharge", "NoDefault"];
pub(super) const MANUFACTURERS: [&str; 8] = [
    "Dell",
    "Lenovo",
    "HP",
    "Cisco",
    "Fortinet",
    "Microsoft",
    "Ubiquiti",
    "APC",
];
/// `(name, category)`: 1 hardware, 2 software, 3 licence, 4 service.
pub(super) const PRODUCT_KINDS: [(&str, u64); 10] = [
    ("Laptop", 1),
    ("Desktop", 1),
    ("Monitor 27in", 1),
    ("Switch 24-port", 1),
    ("Access Point", 1),
    ("UPS 1500VA", 1),
    ("Antivirus", 2),
    ("Backup Agent", 2),
    ("Business Premium Licence", 3),
    ("Installation", 4),
];
pub(super) const PROJECT_NAMES: [&str; 8] = [
    "Office 365 Migration",
    "Network Refresh",
    "Server Upgrade",
    "Firewall Replacement",
    "New Office Build-out",
    "Backup Overhaul",
    "Security Audit",
    "VoIP Rollout",
];
/// `(name, closed)`.
pub(super) const PROJECT_STATUSES: [(&str, bool); 5] = [
    ("Open", false),
    ("In Progress", false),
    ("On Hold", false),
    ("Completed", true),
    ("Cancelled", true),
];
pub(super) const PROJECT_TYPES: [&str; 3] = ["Implementation", "Migration", "Internal"];
pub(super) const BILLING_METHODS: [&str; 4] =
    ["ActualRates", "FixedFee", "NotToExceed", "OverrideRate"];
pub(super) const PHASES: [&str; 4] = ["Planning", "Execution", "Testing", "Go-Live"];
pub(super) const TASK_SUMMARIES: [&str; 8] = [
    "Order hardware",
    "Configure firewall rules",
    "Migrate mailboxes",
    "Document the network",
    "User training",
    "Cutover weekend",
    "Decommission old server",
    "Test backups",
];
pub(super) const WORK_TYPES: [&str; 4] = ["Remote Support", "Onsite", "Travel", "Admin"];
pub(super) const TIME_NOTES: [&str; 6] = [
    "Investigated the issue with the user",
    "Remote session: applied the fix",
    "Called the vendor about the warranty",
    "Onsite visit, replaced the hardware",
    "Updated documentation",
    "Tested and confirmed with the client",
];
pub(super) const NOTE_TITLES: [&str; 5] = [
    "Customer update",
    "Internal note",
    "Workaround",
    "Resolution",
    "Escalated",
];
/// ConnectWise schedule types: `(identifier, subject prefix)`.
pub(super) const SCHEDULE_TYPES: [(&str, &str); 3] =
    [("S", "Service"), ("C", "Meeting"), ("P", "Project")];
pub(super) const SCHEDULE_STATUSES: [&str; 4] = ["Tentative", "Firm", "Done", "Cancelled"];
pub(super) const SCHEDULE_TOPICS: [&str; 4] = [
    "Quarterly review",
    "Site survey",
    "Project kickoff",
    "Network assessment",
];
pub(super) const BILLING_CODES: [u64; 4] = [1001, 1002, 1003, 1004];
