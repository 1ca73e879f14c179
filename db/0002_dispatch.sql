CREATE TABLE "job_approvals" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"job_id" bigint NOT NULL,
	"approver" text NOT NULL,
	"approved_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "warm_minions" (
	"repository_id" bigint NOT NULL,
	"label" text NOT NULL,
	"minion_id" bigint NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "warm_minions_repository_id_label_pk" PRIMARY KEY("repository_id","label")
);
--> statement-breakpoint
ALTER TABLE "graphs" ADD COLUMN "protected_branch" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "due_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "parent_job_id" bigint;--> statement-breakpoint
ALTER TABLE "minions" ADD COLUMN "job_labels" text[];--> statement-breakpoint
ALTER TABLE "minions" ADD COLUMN "quarantined_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "job_approvals" ADD CONSTRAINT "job_approvals_job_id_jobs_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."jobs"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "warm_minions" ADD CONSTRAINT "warm_minions_repository_id_repositories_id_fk" FOREIGN KEY ("repository_id") REFERENCES "public"."repositories"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "warm_minions" ADD CONSTRAINT "warm_minions_minion_id_minions_id_fk" FOREIGN KEY ("minion_id") REFERENCES "public"."minions"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "job_approvals_job_idx" ON "job_approvals" USING btree ("job_id");--> statement-breakpoint
CREATE INDEX "jobs_due_idx" ON "jobs" USING btree ("due_at") WHERE "jobs"."state" = 'pending';--> statement-breakpoint
CREATE INDEX "jobs_parent_idx" ON "jobs" USING btree ("parent_job_id") WHERE "jobs"."parent_job_id" is not null;