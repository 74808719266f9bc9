-- Projection: prompt tokens of a call read from the provider's prompt cache (part of
-- input_tokens, priced at the model's cached rate).
ALTER TABLE model_calls ADD COLUMN cached_tokens INTEGER NOT NULL DEFAULT 0;
