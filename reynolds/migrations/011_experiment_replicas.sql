-- replicas:POOL=N strategies scale pools; what each pool had before the first scaling, so the experiment
-- puts it back when it ends (whichever process drives it by then). NULL: nothing to restore.
ALTER TABLE experiments ADD COLUMN restore jsonb;
