CREATE TABLE "api_tokens" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"token_hash" text NOT NULL,
	"operator" boolean DEFAULT false NOT NULL,
	"repository_ids" bigint[],
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_used_at" timestamp with time zone,
	"revoked_at" timestamp with time zone,
	CONSTRAINT "api_tokens_token_hash_unique" UNIQUE("token_hash")
);
--> statement-breakpoint
CREATE TABLE "lease_watch" (
	"id" smallint PRIMARY KEY DEFAULT 1 NOT NULL,
	"seen_at" timestamp with time zone NOT NULL,
	"up_since" timestamp with time zone NOT NULL,
	CONSTRAINT "lease_watch_one_row" CHECK ("lease_watch"."id" = 1)
);
--> statement-breakpoint
CREATE TABLE "pull_request_heads" (
	"repository_id" bigint NOT NULL,
	"pull_number" integer NOT NULL,
	"head_sha" text NOT NULL,
	"arrived_at" timestamp with time zone NOT NULL,
	"pushed_by" text,
	CONSTRAINT "pull_request_heads_repository_id_pull_number_head_sha_pk" PRIMARY KEY("repository_id","pull_number","head_sha")
);
--> statement-breakpoint
ALTER TABLE "github_budgets" ADD COLUMN "refusals" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "read_token_hash" text;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "log_bytes" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "webhook_deliveries" ADD COLUMN "body_hash" text;--> statement-breakpoint
ALTER TABLE "pull_request_heads" ADD CONSTRAINT "pull_request_heads_repository_id_repositories_id_fk" FOREIGN KEY ("repository_id") REFERENCES "public"."repositories"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "webhook_deliveries_body_hash_idx" ON "webhook_deliveries" USING btree ("body_hash");