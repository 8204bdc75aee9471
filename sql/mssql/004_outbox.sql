-- The outbox: what each destination (the EHR over SOAP, notifications) still has to be sent, written in the
-- transaction that stores the message, so nothing stored is forgotten and nothing unstored is sent.
-- The T-SQL twin of sql/postgresql/004_outbox.sql. Batches are separated by GO lines.

SET ANSI_NULLS ON;
SET ANSI_PADDING ON;
SET ANSI_WARNINGS ON;
SET ARITHABORT ON;
SET CONCAT_NULL_YIELDS_NULL ON;
SET QUOTED_IDENTIFIER ON;
SET NUMERIC_ROUNDABORT OFF;
GO

IF OBJECT_ID(N'dbo.outbox', N'U') IS NULL
CREATE TABLE dbo.outbox (
    id               BIGINT IDENTITY(1,1) NOT NULL CONSTRAINT pk_outbox PRIMARY KEY,
    destination      NVARCHAR(100) NOT NULL,             -- the destination's name in its route file
    route            NVARCHAR(100) NOT NULL,
    kind             NVARCHAR(20) NOT NULL
        CONSTRAINT ck_outbox_kind CHECK (kind IN (N'observations', N'alert', N'alert_resolved')),
    idempotency_key  NVARCHAR(200) NOT NULL,             -- the same on every attempt: the receiver can tell a resend
    message_id       BIGINT NULL CONSTRAINT fk_outbox_message REFERENCES dbo.messages (id),
    alert_id         BIGINT NULL CONSTRAINT fk_outbox_alert REFERENCES dbo.alerts (id),
    patient_id       NVARCHAR(100) NOT NULL,             -- order is kept per destination and patient
    payload          NVARCHAR(MAX) NOT NULL,             -- the JSON document sent (docs/outbox.md)
    state            NVARCHAR(20) NOT NULL
        CONSTRAINT ck_outbox_state CHECK (state IN (N'PENDING', N'SENDING', N'SENT', N'DEAD', N'SUPPRESSED')),
    attempts         INT NOT NULL CONSTRAINT df_outbox_attempts DEFAULT 0,
    next_attempt_at  DATETIME2(6) NOT NULL,
    claimed_by       NVARCHAR(100) NULL,                 -- the engine node sending it (state SENDING)
    claimed_until    DATETIME2(6) NULL,                  -- after this the claim lapses and the row is PENDING again
    remote_id        NVARCHAR(200) NULL,                 -- the receiver's id for the record
    last_error       NVARCHAR(MAX) NULL,
    created_at       DATETIME2(6) NOT NULL,
    sent_at          DATETIME2(6) NULL
);
GO
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'dbo.outbox') AND name = N'ux_outbox_key')
CREATE UNIQUE NONCLUSTERED INDEX ux_outbox_key ON dbo.outbox (destination, idempotency_key);
GO
-- The queue: rows still to send, per destination and patient, oldest first.
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'dbo.outbox') AND name = N'ix_outbox_queue')
CREATE NONCLUSTERED INDEX ix_outbox_queue ON dbo.outbox (destination, patient_id, id)
    WHERE state IN (N'PENDING', N'SENDING');
GO
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'dbo.outbox') AND name = N'ix_outbox_state')
CREATE NONCLUSTERED INDEX ix_outbox_state ON dbo.outbox (state, destination, created_at);
GO
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'dbo.outbox') AND name = N'ix_outbox_message')
CREATE NONCLUSTERED INDEX ix_outbox_message ON dbo.outbox (message_id);
GO
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'dbo.outbox') AND name = N'ix_outbox_alert')
CREATE NONCLUSTERED INDEX ix_outbox_alert ON dbo.outbox (alert_id);
GO

-- Every delivery attempt with its outcome: the audit trail of what was sent, when, and what came back.
IF OBJECT_ID(N'dbo.outbox_attempts', N'U') IS NULL
CREATE TABLE dbo.outbox_attempts (
    id           BIGINT IDENTITY(1,1) NOT NULL CONSTRAINT pk_outbox_attempts PRIMARY KEY,
    outbox_id    BIGINT NOT NULL CONSTRAINT fk_outbox_attempts_row REFERENCES dbo.outbox (id),
    attempt      INT NOT NULL,
    node         NVARCHAR(100) NOT NULL,
    started_at   DATETIME2(6) NOT NULL,
    duration_ms  INT NOT NULL,
    outcome      NVARCHAR(10) NOT NULL CONSTRAINT ck_outbox_attempts_outcome CHECK (outcome IN (N'sent', N'retry', N'dead')),
    remote_id    NVARCHAR(200) NULL,
    error        NVARCHAR(MAX) NULL
);
GO
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'dbo.outbox_attempts') AND name = N'ix_outbox_attempts_row')
CREATE NONCLUSTERED INDEX ix_outbox_attempts_row ON dbo.outbox_attempts (outbox_id);
GO
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'dbo.outbox_attempts') AND name = N'ix_outbox_attempts_started')
CREATE NONCLUSTERED INDEX ix_outbox_attempts_started ON dbo.outbox_attempts (started_at);
GO

-- Operators pause and resume a destination; its rows wait in the queue meanwhile.
IF OBJECT_ID(N'dbo.destinations', N'U') IS NULL
CREATE TABLE dbo.destinations (
    name        NVARCHAR(100) NOT NULL CONSTRAINT pk_destinations PRIMARY KEY,
    paused      BIT NOT NULL,
    changed_at  DATETIME2(6) NOT NULL,
    changed_by  NVARCHAR(100) NOT NULL
);
GO
