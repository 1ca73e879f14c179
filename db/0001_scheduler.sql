ALTER TABLE "jobs" ADD COLUMN "retries_used" smallint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "next_cause" text DEFAULT 'scheduled' NOT NULL;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "avoid_minion_id" bigint;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "request_deadline" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "last_output_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "runtime_deadline" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "idle_deadline" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "jobs" ADD CONSTRAINT "jobs_avoid_minion_id_minions_id_fk" FOREIGN KEY ("avoid_minion_id") REFERENCES "public"."minions"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "graphs_event_name_idx" ON "graphs" USING btree ("event_id","name");--> statement-breakpoint
CREATE INDEX "jobs_graph_state_idx" ON "jobs" USING btree ("graph_id","state");--> statement-breakpoint
CREATE INDEX "jobs_request_deadline_idx" ON "jobs" USING btree ("request_deadline") WHERE "jobs"."state" = 'pending';--> statement-breakpoint
CREATE INDEX "runs_runtime_deadline_idx" ON "runs" USING btree ("runtime_deadline") WHERE "runs"."state" = 'running';--> statement-breakpoint
CREATE INDEX "runs_idle_deadline_idx" ON "runs" USING btree ("idle_deadline") WHERE "runs"."state" = 'running';--> statement-breakpoint
ALTER TABLE "jobs" DROP COLUMN "unmet_dependencies";