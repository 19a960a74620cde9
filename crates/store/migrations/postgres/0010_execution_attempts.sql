-- Attempt history (issue 18: "why did it fail?"). An execution row is its latest attempt:
-- the HTTP status the executor answered and when that attempt started sit beside the error.
-- Earlier attempts (transient failures that were retried) are kept in execution_attempts,
-- written by the settlement that schedules the retry, so an execution that settles on its
-- first attempt, nearly all of them, costs no extra row.
ALTER TABLE executions ADD COLUMN http_status BIGINT;
ALTER TABLE executions ADD COLUMN attempt_started_at BIGINT;

CREATE TABLE execution_attempts (
    execution_id TEXT COLLATE "C" NOT NULL,
    attempt      BIGINT NOT NULL,
    started_at   BIGINT,
    finished_at  BIGINT NOT NULL,
    http_status  BIGINT,
    error        TEXT,
    PRIMARY KEY (execution_id, attempt)
);
