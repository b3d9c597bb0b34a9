-- 0003 prepay: credit ledger (append-only), per-meter accounts, register marks, settings,
-- tariffs, relay state and redeemed vouchers. Money in integer units of 1/10000 currency unit.

-- One row per money movement. `amount` is the change of the net balance (what the tenant owns
-- minus what is owed); credit/debt/emergency are the changes of the three parts, so that
-- amount = credit - debt - emergency. `ikey` makes every entry idempotent.
CREATE TABLE ledger (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    meter_id      TEXT    NOT NULL,
    ts_ms         INTEGER NOT NULL,
    kind          TEXT    NOT NULL CHECK (kind IN ('topup', 'charge', 'standing_charge',
                      'emergency_credit', 'emergency_repayment', 'debt_recovery', 'adjustment')),
    amount        INTEGER NOT NULL,
    credit        INTEGER NOT NULL,
    debt          INTEGER NOT NULL,
    emergency     INTEGER NOT NULL,
    balance_after INTEGER NOT NULL,
    ikey          TEXT    NOT NULL UNIQUE,
    data          TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(data)),
    CHECK (amount = credit - debt - emergency)
);
CREATE INDEX ledger_meter ON ledger (meter_id, id);

CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END;
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END;

-- Running totals per meter, updated in the same transaction as each ledger row (a cache of
-- SUM() over the ledger: storage.ledger.verify_account() recomputes and compares).
CREATE TABLE prepay_accounts (
    meter_id         TEXT    PRIMARY KEY,
    balance          INTEGER NOT NULL DEFAULT 0,
    credit           INTEGER NOT NULL DEFAULT 0,
    debt             INTEGER NOT NULL DEFAULT 0,
    emergency        INTEGER NOT NULL DEFAULT 0,
    loaded_total     INTEGER NOT NULL DEFAULT 0,
    charged_total    INTEGER NOT NULL DEFAULT 0,
    last_load_amount INTEGER,
    last_load_ms     INTEGER,
    emergency_used   INTEGER NOT NULL DEFAULT 0,
    carry            INTEGER NOT NULL DEFAULT 0 CHECK (carry >= 0 AND carry < 1000),
    standing_through TEXT
);

-- Per-meter settings changed by commands (they override the config file once set).
CREATE TABLE prepay_settings (
    meter_id   TEXT PRIMARY KEY,
    mode       TEXT CHECK (mode IN ('operator', 'automatic', 'manual')),
    warn_limit INTEGER,
    tariff_id  TEXT,
    updated_ms INTEGER NOT NULL
);

-- Last charged register value per meter and register, in milli-units of the register unit.
CREATE TABLE prepay_marks (
    meter_id   TEXT    NOT NULL,
    register   TEXT    NOT NULL,
    milli      INTEGER NOT NULL,
    ts_ms      INTEGER NOT NULL,
    reading_id INTEGER,
    PRIMARY KEY (meter_id, register)
);

CREATE TABLE prepay_tariffs (
    tariff_id  TEXT PRIMARY KEY,
    definition TEXT NOT NULL CHECK (json_valid(definition)),
    updated_ms INTEGER NOT NULL
);

CREATE TABLE prepay_relays (
    meter_id   TEXT    PRIMARY KEY,
    state      TEXT    NOT NULL CHECK (json_valid(state)),
    updated_ms INTEGER NOT NULL
);

CREATE TABLE vouchers (
    id          TEXT    PRIMARY KEY,
    meter_id    TEXT    NOT NULL,
    amount      INTEGER NOT NULL,
    kid         TEXT    NOT NULL,
    redeemed_ms INTEGER NOT NULL
);
