CREATE INDEX "runs_minion_running_idx" ON "runs" USING btree ("minion_id") WHERE "runs"."state" = 'running';
