//! One request down an alias's chain: per-model slots, each endpoint tried with retries
//! behind its circuit breaker, the next one on failure.

use super::*;

impl Gateway {
    pub(super) async fn walk(
        &self,
        request: &ModelRequest,
        chain: &[String],
        call_id: String,
        notes: &mut Vec<EventData>,
    ) -> Result<ModelResponse, GatewayError> {
        let started = Instant::now();
        let month = current_month();
        let mut path = Vec::new();
        for entry in chain {
            let (provider, model) = split_model(entry).unwrap_or(("", entry));
            let Some(endpoint) = self.endpoints.get(provider) else {
                path.push(Attempt {
                    model: entry.clone(),
                    outcome: "skipped: provider not configured".into(),
                });
                continue;
            };
            let call = ProviderRequest {
                model,
                messages: &request.messages,
                temperature: request.temperature,
                max_tokens: request.max_tokens,
                schema: request.schema.as_ref(),
                offline: request.offline.as_ref(),
            };
            let worst = self.worst_case_cost(request, entry);
            let reservation = match self.budgets.reserve(&request.attribution, &month, worst) {
                Ok(reservation) => reservation,
                Err((error, reached)) => {
                    Gateway::reached_events(reached, notes);
                    path.push(Attempt {
                        model: entry.clone(),
                        outcome: format!("refused: {error}"),
                    });
                    return Err(GatewayError::Budget { error, path });
                }
            };
            let outcome = self
                .try_endpoint(endpoint, entry, &call, request.caller_parses, &mut path)
                .await;
            let Ok(Some((reply, json))) = outcome else {
                self.budgets.release(reservation);
                match outcome {
                    Err(message) => return Err(GatewayError::Permanent { message, path }),
                    _ => continue,
                }
            };
            let price = self.config.model(entry);
            let cost = (f64::from(reply.input_tokens) * price.input_per_mtok
                + f64::from(reply.output_tokens) * price.output_per_mtok)
                / 1_000_000.0;
            let reached = self.budgets.settle(reservation, cost);
            Gateway::reached_events(reached, notes);
            return Ok(ModelResponse {
                call_id,
                upstream_us: reply.upstream.as_micros().min(u128::from(u64::MAX)) as u64,
                text: reply.text,
                json,
                input_tokens: reply.input_tokens,
                output_tokens: reply.output_tokens,
                cost_usd: cost,
                latency_ms: started.elapsed().as_millis() as u64,
                provider: provider.to_string(),
                model: reply.model.clone().unwrap_or_else(|| model.to_string()),
                path,
            });
        }
        Err(GatewayError::Exhausted {
            target: request.target.clone(),
            path,
        })
    }

    fn model_slots(&self, entry: &str) -> Arc<Semaphore> {
        let mut map = self.per_model.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(entry.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.config.model(entry).max_concurrency)))
            .clone()
    }

    /// One chain entry with its retries. `Ok(None)`: move on to the next entry.
    async fn try_endpoint(
        &self,
        endpoint: &Endpoint,
        entry: &str,
        call: &ProviderRequest<'_>,
        lenient: bool,
        path: &mut Vec<Attempt>,
    ) -> Result<Option<(ProviderReply, Option<serde_json::Value>)>, String> {
        let mut attempt = 0u32;
        loop {
            if let Err(open) = endpoint.breaker.try_acquire() {
                path.push(Attempt {
                    model: entry.to_string(),
                    outcome: open.to_string(),
                });
                return Ok(None);
            }
            let result = {
                // The model's slot first, then a global one: a call waiting for its model
                // never holds a slot another model could use.
                let model_slots = self.model_slots(entry);
                let _model = model_slots
                    .acquire()
                    .await
                    .expect("semaphores are never closed");
                let _global = self
                    .in_flight
                    .acquire()
                    .await
                    .expect("semaphores are never closed");
                endpoint.client.complete(call).await
            };
            match result.and_then(|reply| with_json(reply, call.schema.is_some(), lenient)) {
                Ok(answer) => {
                    endpoint.breaker.record_success();
                    path.push(Attempt {
                        model: entry.to_string(),
                        outcome: "ok".into(),
                    });
                    return Ok(Some(answer));
                }
                Err(ProviderError::Unavailable { message }) => {
                    path.push(Attempt {
                        model: entry.to_string(),
                        outcome: format!("skipped: {message}"),
                    });
                    return Ok(None);
                }
                Err(ProviderError::Permanent { message }) => {
                    path.push(Attempt {
                        model: entry.to_string(),
                        outcome: message.clone(),
                    });
                    return Err(message);
                }
                Err(ProviderError::Transient {
                    message,
                    retry_after,
                }) => {
                    endpoint.breaker.record_failure();
                    path.push(Attempt {
                        model: entry.to_string(),
                        outcome: message,
                    });
                    match next_step(&self.config.retry, attempt, retry_after, rand::random()) {
                        Next::RetryAfter(wait) => tokio::time::sleep(wait).await,
                        Next::NextProvider => return Ok(None),
                    }
                }
            }
            attempt += 1;
        }
    }
}

/// With a schema, the reply must be JSON: parsed once here, and a reply that is not JSON is a
/// transient failure (the model may do better on the next try). `lenient`: the caller parses
/// the reply itself (the engine's gate, which accepts fenced blocks and re-asks with feedback).
fn with_json(
    reply: ProviderReply,
    schema: bool,
    lenient: bool,
) -> Result<(ProviderReply, Option<serde_json::Value>), ProviderError> {
    if !schema {
        return Ok((reply, None));
    }
    match serde_json::from_str(&reply.text) {
        Ok(json) => Ok((reply, Some(json))),
        Err(_) if lenient => Ok((reply, None)),
        Err(_) => Err(ProviderError::Transient {
            message: "reply is not the JSON the schema asks for".into(),
            retry_after: None,
        }),
    }
}
