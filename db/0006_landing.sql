CREATE TABLE "landing_queues" (
	"repository_id" bigint NOT NULL,
	"base_branch" text NOT NULL,
	"installation_id" bigint NOT NULL,
	"full_name" text NOT NULL,
	"state" jsonb NOT NULL,
	"runner" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"active" boolean DEFAULT true NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "landing_queues_repository_id_base_branch_pk" PRIMARY KEY("repository_id","base_branch")
);
--> statement-breakpoint
ALTER TABLE "landing_queue_entries" ADD COLUMN "landed_sha" text;--> statement-breakpoint
ALTER TABLE "landing_queue_entries" ADD COLUMN "check_run_id" bigint;--> statement-breakpoint
ALTER TABLE "landing_queue_entries" ADD COLUMN "check_sha" text;--> statement-breakpoint
ALTER TABLE "landing_queue_entries" ADD COLUMN "check_hash" text;--> statement-breakpoint
ALTER TABLE "landing_queue_entries" ADD COLUMN "check_dirty" boolean DEFAULT true NOT NULL;--> statement-breakpoint
ALTER TABLE "landing_queues" ADD CONSTRAINT "landing_queues_repository_id_repositories_id_fk" FOREIGN KEY ("repository_id") REFERENCES "public"."repositories"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "landing_queues_active_idx" ON "landing_queues" USING btree ("repository_id") WHERE "landing_queues"."active";--> statement-breakpoint
CREATE UNIQUE INDEX "landing_queue_entries_pull_idx" ON "landing_queue_entries" USING btree ("repository_id","pull_number");