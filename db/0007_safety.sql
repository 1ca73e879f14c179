ALTER TABLE "webhook_deliveries" ADD COLUMN "body_hash" text;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "log_bytes" bigint DEFAULT 0 NOT NULL;
