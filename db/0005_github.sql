CREATE TABLE "check_reports" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"event_id" bigint NOT NULL,
	"graph_id" bigint,
	"repository_id" bigint NOT NULL,
	"installation_id" bigint NOT NULL,
	"head_sha" text NOT NULL,
	"static_check_run" jsonb,
	"published_changes" bigint DEFAULT -1 NOT NULL,
	"finished" boolean DEFAULT false NOT NULL,
	"due_at" timestamp with time zone DEFAULT now() NOT NULL,
	"hold_until" timestamp with time zone,
	"lease_expires_at" timestamp with time zone,
	"attempts" integer DEFAULT 0 NOT NULL,
	"last_error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "check_runs" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"report_id" bigint NOT NULL,
	"key" text NOT NULL,
	"generation" integer DEFAULT 1 NOT NULL,
	"github_id" bigint,
	"name" text NOT NULL,
	"sent_hash" text,
	"status" text,
	"annotations_sent" integer DEFAULT 0 NOT NULL,
	"sent_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "github_budgets" (
	"installation_id" bigint PRIMARY KEY NOT NULL,
	"blocked_until" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "github_content_requests" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"installation_id" bigint NOT NULL,
	"at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "handled_comments" (
	"comment_id" bigint PRIMARY KEY NOT NULL,
	"handled_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "ok_to_test" (
	"repository_id" bigint NOT NULL,
	"pull_number" integer NOT NULL,
	"head_sha" text NOT NULL,
	"approved_by" text NOT NULL,
	"approved_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "ok_to_test_repository_id_pull_number_head_sha_pk" PRIMARY KEY("repository_id","pull_number","head_sha")
);
--> statement-breakpoint
CREATE TABLE "outgoing_comments" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"dedup_key" text NOT NULL,
	"installation_id" bigint NOT NULL,
	"full_name" text NOT NULL,
	"issue_number" integer NOT NULL,
	"body" text NOT NULL,
	"github_id" bigint,
	"due_at" timestamp with time zone DEFAULT now() NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"lease_expires_at" timestamp with time zone,
	"last_error" text,
	"sent_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "outgoing_comments_dedup_key_unique" UNIQUE("dedup_key")
);
--> statement-breakpoint
ALTER TABLE "events" ADD COLUMN "pull_number" integer;--> statement-breakpoint
ALTER TABLE "graphs" ADD COLUMN "changes" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "check_reports" ADD CONSTRAINT "check_reports_event_id_events_id_fk" FOREIGN KEY ("event_id") REFERENCES "public"."events"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "check_reports" ADD CONSTRAINT "check_reports_graph_id_graphs_id_fk" FOREIGN KEY ("graph_id") REFERENCES "public"."graphs"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "check_reports" ADD CONSTRAINT "check_reports_repository_id_repositories_id_fk" FOREIGN KEY ("repository_id") REFERENCES "public"."repositories"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "check_runs" ADD CONSTRAINT "check_runs_report_id_check_reports_id_fk" FOREIGN KEY ("report_id") REFERENCES "public"."check_reports"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "ok_to_test" ADD CONSTRAINT "ok_to_test_repository_id_repositories_id_fk" FOREIGN KEY ("repository_id") REFERENCES "public"."repositories"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "check_reports_due_idx" ON "check_reports" USING btree ("due_at") WHERE not "check_reports"."finished";--> statement-breakpoint
CREATE UNIQUE INDEX "check_reports_graph_idx" ON "check_reports" USING btree ("graph_id");--> statement-breakpoint
CREATE UNIQUE INDEX "check_reports_definitions_idx" ON "check_reports" USING btree ("event_id") WHERE "check_reports"."graph_id" is null;--> statement-breakpoint
CREATE UNIQUE INDEX "check_runs_report_key_idx" ON "check_runs" USING btree ("report_id","key","generation");--> statement-breakpoint
CREATE INDEX "check_runs_github_idx" ON "check_runs" USING btree ("github_id");--> statement-breakpoint
CREATE INDEX "github_content_requests_idx" ON "github_content_requests" USING btree ("installation_id","at");--> statement-breakpoint
CREATE INDEX "outgoing_comments_due_idx" ON "outgoing_comments" USING btree ("due_at") WHERE "outgoing_comments"."sent_at" is null;--> statement-breakpoint
CREATE INDEX "events_pull_idx" ON "events" USING btree ("repository_id","pull_number") WHERE "events"."pull_number" is not null;