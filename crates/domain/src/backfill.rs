//! Backfill, workflow and execution enums, and the backfill state machine (docs/api.md §3.3).

// `$s` is a `tt`, not a `literal`: a `literal` fragment reaches derive macros wrapped in an
// invisible group, which utoipa's `ToSchema` does not read in `#[serde(rename = ...)]` (the
// OpenAPI enum then showed the Rust variant names instead of the wire values).
macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $s:tt),+ $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
        $(#[$m])*
        pub enum $name {
            $(#[serde(rename = $s)] $variant),+
        }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some($name::$variant),)+ _ => None }
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use string_enum;

string_enum!(
    /// Lifecycle state of a backfill.
    #[schema(title = "BackfillRunState")]
    BackfillRunState {
        Draft => "DRAFT",
        Running => "RUNNING",
        Paused => "PAUSED",
        Completed => "COMPLETED",
        Cancelled => "CANCELLED",
        Failed => "FAILED",
    }
);

string_enum!(
    #[schema(title = "EntityType")]
    EntityType {
        Ticket => "ticket",
        ProjectTicket => "project_ticket",
        Task => "task",
        ScheduledEntry => "scheduled_entry",
        TimeEntry => "time_entry",
        Project => "project",
        Company => "company",
        Contact => "contact",
        Resource => "resource",
        Contract => "contract",
        Opportunity => "opportunity",
        None => "none",
        Configuration => "configuration",
        Note => "note",
        Team => "team",
        Role => "role",
        AuditTrail => "audit_trail",
        Appointment => "appointment",
        Servicecall => "servicecall",
        ContractService => "contract_service",
        CompanyLocation => "company_location",
        Product => "product",
    }
);

string_enum!(
    #[schema(title = "AutonomyType")]
    AutonomyType {
        ChainedActions => "CHAINED_ACTIONS",
        Agentic => "AGENTIC",
        Conversational => "CONVERSATIONAL",
    }
);

string_enum!(
    /// Whether a workflow may run.
    WorkflowState {
        Enabled => "ENABLED",
        Disabled => "DISABLED",
    }
);

string_enum!(
    /// Status of one entity of a backfill's snapshot.
    ItemStatus {
        Pending => "pending",
        InFlight => "in_flight",
        Succeeded => "succeeded",
        Failed => "failed",
        Skipped => "skipped",
        Cancelled => "cancelled",
    }
);

string_enum!(
    /// Status of one execution of a workflow on one entity.
    ExecutionStatus {
        Queued => "queued",
        Running => "running",
        Succeeded => "succeeded",
        Failed => "failed",
        Skipped => "skipped",
        Cancelled => "cancelled",
    }
);

string_enum!(
    /// What a backfill's executions do with a `psa_actions` workflow (docs/psa-actions.md):
    /// `live` writes the changes, `shadow` only records the changes it would make, `revert`
    /// restores the values its parent backfill wrote. Other executors run `live` only.
    #[schema(title = "BackfillMode")]
    BackfillMode {
        Live => "live",
        Shadow => "shadow",
        Revert => "revert",
    }
);

string_enum!(
    /// A user signal sent to a backfill.
    Signal {
        Start => "start",
        Pause => "pause",
        Resume => "resume",
        Cancel => "cancel",
    }
);

impl EntityType {
    /// Every type names a kind of record a workflow can run over, but `none`.
    pub fn is_backfillable(self) -> bool {
        self != EntityType::None
    }
}

impl BackfillRunState {
    /// DRAFT, RUNNING and PAUSED count as active: at most one per target workflow.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Draft | Self::Running | Self::Paused)
    }
    pub fn is_terminal(self) -> bool {
        !self.is_active()
    }
}

impl ExecutionStatus {
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Failed | Self::Skipped | Self::Cancelled
        )
    }
}

/// What a signal does to a backfill in a given state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalOutcome {
    /// The state changes to the given one.
    Transition(BackfillRunState),
    /// Already in the state the signal asks for: accepted, nothing changes.
    NoOp,
}

/// Why a workflow cannot be the target of a new backfill (create, or a rerun-failed child).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetRefusal {
    /// The workflow is DISABLED: `409 workflow_not_enabled`.
    Disabled,
    /// A CONVERSATIONAL workflow is not run over records: `422 invalid_for_conversational`.
    Conversational,
}

/// The one rule for a backfill's target workflow, applied by create, by rerun-failed (inside
/// its transaction) and by the dashboard's choices: it must be ENABLED and not CONVERSATIONAL.
pub fn check_backfill_target(
    state: WorkflowState,
    autonomy: AutonomyType,
) -> Result<(), TargetRefusal> {
    if state != WorkflowState::Enabled {
        return Err(TargetRefusal::Disabled);
    }
    if autonomy == AutonomyType::Conversational {
        return Err(TargetRefusal::Conversational);
    }
    Ok(())
}

/// Why a signal is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalRefusal {
    /// The backfill is terminal (COMPLETED, CANCELLED, FAILED): `409 backfill_not_active`.
    Terminal(BackfillRunState),
    /// The backfill is active but the signal does not apply (pause a DRAFT, start a PAUSED one):
    /// `409 signal_not_applicable`.
    NotApplicable(BackfillRunState),
}

/// The signal half of the state machine of docs/api.md §3.3. Completion and orchestrator failures are
/// decided by the orchestrator, not by signals.
pub fn apply_signal(
    state: BackfillRunState,
    signal: Signal,
) -> Result<SignalOutcome, SignalRefusal> {
    use BackfillRunState as S;
    use SignalOutcome::*;
    match (signal, state) {
        (Signal::Cancel, S::Cancelled) => Ok(NoOp),
        (_, s) if s.is_terminal() => Err(SignalRefusal::Terminal(s)),
        (Signal::Cancel, _) => Ok(Transition(S::Cancelled)),
        (Signal::Start, S::Draft) => Ok(Transition(S::Running)),
        (Signal::Start, S::Running) => Ok(NoOp),
        (Signal::Pause, S::Running) => Ok(Transition(S::Paused)),
        (Signal::Pause, S::Paused) => Ok(NoOp),
        (Signal::Resume, S::Paused) => Ok(Transition(S::Running)),
        (Signal::Resume, S::Running) => Ok(NoOp),
        (_, s) => Err(SignalRefusal::NotApplicable(s)),
    }
}

/// The signals that change a backfill in `state` (what the dashboard offers as buttons): the
/// ones [`apply_signal`] answers with a transition.
pub fn signals_that_apply(state: BackfillRunState) -> Vec<Signal> {
    [Signal::Start, Signal::Pause, Signal::Resume, Signal::Cancel]
        .into_iter()
        .filter(|s| matches!(apply_signal(state, *s), Ok(SignalOutcome::Transition(_))))
        .collect()
}

/// Why a backfill cannot be rerun.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RerunRefusal {
    /// Only a COMPLETED, CANCELLED or FAILED backfill can be rerun.
    NotTerminal(BackfillRunState),
    /// Nothing failed.
    NoFailures,
}

/// The rule for a rerun-failed source: ended, with failures (the store checks it inside the
/// rerun transaction; the dashboard offers the button by it).
pub fn check_rerunnable(state: BackfillRunState, failed_count: i64) -> Result<(), RerunRefusal> {
    if !state.is_terminal() {
        return Err(RerunRefusal::NotTerminal(state));
    }
    if failed_count == 0 {
        return Err(RerunRefusal::NoFailures);
    }
    Ok(())
}

/// Fewest, most and default executions a backfill keeps in flight.
pub const MIN_IN_FLIGHT: i64 = 1;
pub const MAX_IN_FLIGHT: i64 = 100;
pub const DEFAULT_IN_FLIGHT: i64 = 5;

/// The rule for `max_in_flight`, at create, at edit and in the dashboard's wizard.
pub fn check_max_in_flight(n: i64) -> Result<(), crate::validation::FieldError> {
    if (MIN_IN_FLIGHT..=MAX_IN_FLIGHT).contains(&n) {
        Ok(())
    } else {
        Err(crate::validation::FieldError::new(
            "max_in_flight",
            format!("max_in_flight must be from {MIN_IN_FLIGHT} to {MAX_IN_FLIGHT}"),
        ))
    }
}

/// Longest backfill name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// A backfill's optional name as stored: trimmed, 1 to [`MAX_NAME_CHARS`] characters, no
/// control characters. An empty name means no name (`None`).
pub fn check_name(name: &str) -> Result<Option<String>, crate::validation::FieldError> {
    check_label("name", name)
}

/// An operator's optional label (a backfill's name, an endpoint's description) as stored:
/// trimmed, 1 to [`MAX_NAME_CHARS`] characters, no control characters; empty means none.
/// Errors name `field`.
pub fn check_label(
    field: &str,
    text: &str,
) -> Result<Option<String>, crate::validation::FieldError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if text.chars().any(char::is_control) {
        return Err(crate::validation::FieldError::new(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    if text.chars().count() > MAX_NAME_CHARS {
        return Err(crate::validation::FieldError::new(
            field,
            format!("{field} must be at most {MAX_NAME_CHARS} characters"),
        ));
    }
    Ok(Some(text.to_owned()))
}

/// How far ahead a backfill's start may be scheduled.
pub const MAX_START_AHEAD: jiff::SignedDuration = jiff::SignedDuration::from_hours(366 * 24);

/// The rule for `start_at` at create: an RFC 3339 instant with its offset, at most a year
/// after `now`. An instant already past starts the backfill at once.
pub fn check_start_at(
    s: &str,
    now: jiff::Timestamp,
) -> Result<jiff::Timestamp, crate::validation::FieldError> {
    let t: jiff::Timestamp = s.parse().map_err(|_| {
        crate::validation::FieldError::new(
            "start_at",
            "start_at must be an RFC 3339 instant with its offset, e.g. 2026-12-24T22:00:00Z",
        )
    })?;
    if now
        .checked_add(MAX_START_AHEAD)
        .is_ok_and(|limit| t > limit)
    {
        return Err(crate::validation::FieldError::new(
            "start_at",
            "start_at must be within a year from now",
        ));
    }
    Ok(t)
}

/// Why a backfill's settings cannot be edited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditRefusal {
    /// COMPLETED, CANCELLED and FAILED backfills are history: `409 backfill_not_active`.
    Terminal(BackfillRunState),
}

/// The rule for editing a backfill's name, `max_in_flight` and windows: while it is active
/// (DRAFT, RUNNING, PAUSED). The orchestrator reads both on its next round, so an edit to a
/// running backfill takes effect within a poll interval.
pub fn check_editable(state: BackfillRunState) -> Result<(), EditRefusal> {
    if state.is_terminal() {
        return Err(EditRefusal::Terminal(state));
    }
    Ok(())
}

/// Why a backfill cannot be applied or reverted (`409 backfill_not_eligible` in the API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildRefusal(pub String);

/// The rule for `POST /backfills/{id}/apply`: a shadow run that has ended. Its apply child
/// runs the workflow live over the same snapshot, planning again on each record as it is then.
pub fn check_appliable(
    id: &str,
    mode: BackfillMode,
    state: BackfillRunState,
) -> Result<(), ChildRefusal> {
    if mode != BackfillMode::Shadow {
        return Err(ChildRefusal(format!(
            "backfill {id} is a {mode} run; only a shadow run can be applied"
        )));
    }
    if !state.is_terminal() {
        return Err(ChildRefusal(format!(
            "backfill {id} is {state}; a shadow run can be applied once it has ended"
        )));
    }
    Ok(())
}

/// The rule for `POST /backfills/{id}/revert`: a live run (an apply child included) that has
/// ended. A run still writing would race its own revert; a shadow run wrote nothing; a revert
/// is undone by running the workflow again, not by reverting the revert.
pub fn check_revertable(
    id: &str,
    mode: BackfillMode,
    state: BackfillRunState,
) -> Result<(), ChildRefusal> {
    if mode != BackfillMode::Live {
        return Err(ChildRefusal(format!(
            "backfill {id} is a {mode} run, which wrote nothing to revert"
        )));
    }
    if !state.is_terminal() {
        return Err(ChildRefusal(format!(
            "backfill {id} is {state}; a backfill can be reverted once it has ended (cancel it first)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use BackfillRunState as S;

    #[test]
    fn a_start_is_an_instant_within_a_year() {
        let now: jiff::Timestamp = "2026-12-05T10:00:00Z".parse().unwrap();
        assert_eq!(
            check_start_at("2026-12-24T22:00:00+01:00", now).unwrap(),
            "2026-12-24T21:00:00Z".parse::<jiff::Timestamp>().unwrap()
        );
        assert!(check_start_at("2026-01-01T00:00:00Z", now).is_ok());
        for bad in [
            "2026-12-24",
            "2026-12-24T22:00:00",
            "tonight",
            "2028-01-01T00:00:00Z",
        ] {
            assert_eq!(
                check_start_at(bad, now).unwrap_err().field,
                "start_at",
                "{bad}"
            );
        }
    }

    #[test]
    fn only_ended_shadow_runs_apply_and_ended_live_runs_revert() {
        use BackfillMode as M;
        assert!(check_appliable("b", M::Shadow, S::Completed).is_ok());
        assert!(check_appliable("b", M::Shadow, S::Cancelled).is_ok());
        assert!(check_appliable("b", M::Shadow, S::Running).is_err());
        assert!(check_appliable("b", M::Live, S::Completed).is_err());
        assert!(check_revertable("b", M::Live, S::Completed).is_ok());
        assert!(check_revertable("b", M::Live, S::Failed).is_ok());
        assert!(check_revertable("b", M::Live, S::Paused).is_err());
        assert!(check_revertable("b", M::Shadow, S::Completed).is_err());
        assert!(check_revertable("b", M::Revert, S::Completed).is_err());
    }

    #[test]
    fn buttons_follow_the_state_machine() {
        assert_eq!(
            signals_that_apply(S::Draft),
            [Signal::Start, Signal::Cancel]
        );
        assert_eq!(
            signals_that_apply(S::Running),
            [Signal::Pause, Signal::Cancel]
        );
        assert_eq!(
            signals_that_apply(S::Paused),
            [Signal::Resume, Signal::Cancel]
        );
        assert!(signals_that_apply(S::Completed).is_empty());
        assert_eq!(check_editable(S::Running), Ok(()));
        assert_eq!(check_editable(S::Paused), Ok(()));
        assert_eq!(
            check_editable(S::Completed),
            Err(EditRefusal::Terminal(S::Completed))
        );
        assert!(check_max_in_flight(1).is_ok() && check_max_in_flight(100).is_ok());
        assert_eq!(check_max_in_flight(0).unwrap_err().field, "max_in_flight");
        assert!(check_max_in_flight(1000).is_err());
        assert_eq!(check_name("  Q4 cleanup "), Ok(Some("Q4 cleanup".into())));
        assert_eq!(check_name("   "), Ok(None));
        assert!(check_name("a\u{7}b").is_err());
        assert!(check_name(&"x".repeat(101)).is_err());
        assert!(signals_that_apply(S::Cancelled).is_empty());
        assert_eq!(check_rerunnable(S::Completed, 2), Ok(()));
        assert_eq!(
            check_rerunnable(S::Completed, 0),
            Err(RerunRefusal::NoFailures)
        );
        assert_eq!(
            check_rerunnable(S::Paused, 2),
            Err(RerunRefusal::NotTerminal(S::Paused))
        );
    }

    #[test]
    fn signal_table() {
        let t = |s| Ok(SignalOutcome::Transition(s));
        let noop = Ok(SignalOutcome::NoOp);
        assert_eq!(apply_signal(S::Draft, Signal::Start), t(S::Running));
        assert_eq!(apply_signal(S::Running, Signal::Start), noop);
        assert_eq!(
            apply_signal(S::Paused, Signal::Start),
            Err(SignalRefusal::NotApplicable(S::Paused))
        );
        assert_eq!(apply_signal(S::Running, Signal::Pause), t(S::Paused));
        assert_eq!(apply_signal(S::Paused, Signal::Pause), noop);
        assert_eq!(apply_signal(S::Paused, Signal::Resume), t(S::Running));
        assert_eq!(apply_signal(S::Running, Signal::Resume), noop);
        assert_eq!(
            apply_signal(S::Draft, Signal::Pause),
            Err(SignalRefusal::NotApplicable(S::Draft))
        );
        for s in [S::Draft, S::Running, S::Paused] {
            assert_eq!(apply_signal(s, Signal::Cancel), t(S::Cancelled));
        }
        assert_eq!(apply_signal(S::Cancelled, Signal::Cancel), noop);
        for s in [S::Completed, S::Failed] {
            for sig in Signal::ALL {
                assert_eq!(apply_signal(s, *sig), Err(SignalRefusal::Terminal(s)));
            }
        }
        for sig in [Signal::Start, Signal::Pause, Signal::Resume] {
            assert_eq!(
                apply_signal(S::Cancelled, sig),
                Err(SignalRefusal::Terminal(S::Cancelled))
            );
        }
    }

    #[test]
    fn entity_type_has_22_values() {
        assert_eq!(EntityType::ALL.len(), 22);
        for e in EntityType::ALL {
            assert_eq!(EntityType::parse(e.as_str()), Some(*e));
        }
    }
}
