-- The default vital-sign alert bands (docs: ARCHITECTURE.md). Global rows; edit them, or add rows with a
-- patient_id or a device_id to override one vital for one patient or device.
INSERT INTO alert_thresholds (vital, unit, critical_low, warning_low, warning_high, critical_high, updated_at)
SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, strftime('%Y-%m-%d %H:%M:%f000', 'now')
FROM (VALUES
    ('heart_rate',   '/min',   40.0, 50.0, 120.0, 140.0),
    ('pulse_rate',   '/min',   40.0, 50.0, 120.0, 140.0),
    ('spo2',         '%',      90.0, 94.0, NULL,  NULL),
    ('temperature',  'Cel',    35.0, 36.0, 38.0,  39.5),
    ('resp_rate',    '/min',   8.0,  10.0, 24.0,  30.0),
    ('bp_systolic',  'mm[Hg]', 80.0, 90.0, 160.0, 180.0),
    ('bp_diastolic', 'mm[Hg]', 40.0, 50.0, 100.0, 120.0),
    ('bp_mean',      'mm[Hg]', 55.0, 65.0, 110.0, 130.0),
    ('glucose',      'mmol/L', 3.0,  3.9,  10.0,  13.9)
) AS v
WHERE NOT EXISTS (
    SELECT 1 FROM alert_thresholds t WHERE t.vital = v.column1 AND t.patient_id IS NULL AND t.device_id IS NULL
);
