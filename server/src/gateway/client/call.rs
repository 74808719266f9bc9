//! One request down an alias's chain: per-model slots, each endpoint tried with retries
//! behind its circuit breaker, the next one on failure.

use super::*;

/// Tokens and cost of every reply a call received, the cut-off ones included.
#[derive(Debug, Default)]
struct Spent {
    input: u32,
    output: u32,
    cached: u32,
    cost: f64,
}

impl Spent {
    fn add(&mut self, reply: &ProviderReply, price: &crate::config::gateway::ModelConfig) {
        self.input = self.input.saturating_add(reply.input_tokens);
        self.output = self.output.saturating_add(reply.output_tokens);
        self.cached = self.cached.saturating_add(reply.cached_tokens);
        self.cost += price.cost(
            reply.input_tokens,
            reply.cached_tokens,
            reply.cache_write_tokens,
            reply.output_tokens,
        );
    }
}

/// The messages sent to one model: the request's own; for a model without native tool
/// calling, its tool turns flattened to text and the tools described; the schema written into
/// the prompt for a model without structured output; and a request to be shorter after a
/// reply was cut off.
fn messages_for(
    request: &ModelRequest,
    native_tools: bool,
    schema_in_prompt: bool,
    cut_off: u32,
) -> std::borrow::Cow<'_, [Message]> {
    let tool_turns = request
        .messages
        .iter()
        .any(|m| !m.tool_calls.is_empty() || m.tool_call.is_some());
    let tools_in_prompt = !native_tools && (!request.tools.is_empty() || tool_turns);
    if !tools_in_prompt && !schema_in_prompt && cut_off == 0 {
        return std::borrow::Cow::Borrowed(&request.messages);
    }
    let mut messages = if tools_in_prompt {
        let mut flat = vec![tools::prompt(&request.tools)];
        flat.extend(tools::flatten(&request.messages));
        flat
    } else {
        request.messages.clone()
    };
    if schema_in_prompt && let Some(schema) = &request.schema {
        messages.push(Message::system(format!(
            "Reply with only one JSON object that follows this JSON Schema, with no prose \
             and no code fence:\n{schema}"
        )));
    }
    if cut_off > 0 {
        messages.push(Message::user(format!(
            "Your previous reply was cut off at the {}-token limit. Answer again, complete \
             and much shorter: keep only what is essential.",
            request.max_tokens
        )));
    }
    std::borrow::Cow::Owned(messages)
}

impl Gateway {
    pub(super) async fn walk(
        &self,
        models: &Models,
        request: &ModelRequest,
        chain: &[String],
        call_id: String,
        notes: &mut Vec<EventData>,
    ) -> Result<ModelResponse, GatewayError> {
        let started = Instant::now();
        let month = current_month();
        let mut path = Vec::new();
        if let Err(message) = tools::validate(&request.tools) {
            return Err(GatewayError::Permanent { message, path });
        }
        let mut spent = Spent::default();
        let mut upstream = Duration::ZERO;
        for entry in chain {
            let (provider, model) = split_model(entry).unwrap_or(("", entry));
            let config = &models.config;
            let Some(endpoint) = models.endpoints.get(provider) else {
                path.push(Attempt {
                    model: entry.clone(),
                    outcome: "skipped: provider not configured".into(),
                });
                continue;
            };
            let offline = config.providers[provider].kind == ProviderKind::Offline;
            if offline && request.no_templates {
                path.push(Attempt {
                    model: entry.clone(),
                    outcome: "skipped: this run has been served by a model, and the offline \
                              templates never stand in for one"
                        .into(),
                });
                continue;
            }
            let caps = config.capabilities(entry);
            let price = config.model(entry);
            let worst = worst_case_cost(config, request, entry);
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
            let schema_in_prompt = request.schema.is_some() && !caps.structured_output;
            let native_tools = caps.tools;
            let report = |tokens: u32| {
                if let Some(progress) = &request.progress {
                    progress.report(StreamProgress {
                        model: entry.clone(),
                        output_tokens: tokens,
                    });
                }
            };
            let stream = request.progress.as_ref().map(|_| Streaming {
                stall: Duration::from_secs(config.retry.stall_secs),
                timeout: Duration::from_secs(config.retry.stream_timeout_secs),
                progress: &report,
            });
            let mut cut_off = 0;
            let answer = loop {
                let messages = messages_for(request, native_tools, schema_in_prompt, cut_off);
                let call = ProviderRequest {
                    model,
                    messages: &messages,
                    temperature: request.temperature,
                    max_tokens: request.max_tokens,
                    schema: request.schema.as_ref().filter(|_| !schema_in_prompt),
                    offline: request.offline.as_ref(),
                    caps: &caps,
                    tools: if native_tools { &request.tools } else { &[] },
                    stream,
                };
                let outcome = self
                    .try_endpoint(config, endpoint, entry, &call, request, &mut path)
                    .await;
                match outcome {
                    Ok(Some((reply, json))) => {
                        spent.add(&reply, &price);
                        upstream += reply.upstream;
                        if !reply.truncated {
                            break Ok(Some((reply, json)));
                        }
                        cut_off += 1;
                        let retry = cut_off <= config.retry.max_truncation_retries;
                        let outcome = format!(
                            "cut off at the {}-token limit after {} tokens; {}",
                            request.max_tokens,
                            reply.output_tokens,
                            if retry {
                                "asked again for a shorter answer"
                            } else {
                                "trying the next model"
                            }
                        );
                        tracing::warn!(model = %entry, %call_id, "{outcome}");
                        if let Some(last) = path.last_mut() {
                            last.outcome = outcome;
                        }
                        if !retry {
                            break Ok(None);
                        }
                    }
                    other => break other,
                }
            };
            let Ok(Some((reply, json))) = answer else {
                self.budgets.release(reservation);
                match answer {
                    Err(message) => return Err(GatewayError::Permanent { message, path }),
                    _ => continue,
                }
            };
            let reached = self.budgets.settle(reservation, spent.cost);
            Gateway::reached_events(reached, notes);
            return Ok(ModelResponse {
                call_id,
                upstream_us: upstream.as_micros().min(u128::from(u64::MAX)) as u64,
                text: reply.text,
                tool_calls: reply.tool_calls,
                json,
                input_tokens: spent.input,
                output_tokens: spent.output,
                cached_tokens: spent.cached,
                cost_usd: spent.cost,
                latency_ms: started.elapsed().as_millis() as u64,
                provider: provider.to_string(),
                model: reply.model.clone().unwrap_or_else(|| model.to_string()),
                offline,
                path,
            });
        }
        Err(GatewayError::Exhausted {
            target: request.target.clone(),
            path,
        })
    }

    fn model_slots(&self, config: &GatewayConfig, entry: &str) -> Arc<Semaphore> {
        let mut map = self.per_model.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(entry.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(config.model(entry).max_concurrency)))
            .clone()
    }

    /// One chain entry with its retries. `Ok(None)`: move on to the next entry.
    async fn try_endpoint(
        &self,
        config: &GatewayConfig,
        endpoint: &Endpoint,
        entry: &str,
        call: &ProviderRequest<'_>,
        request: &ModelRequest,
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
                let model_slots = self.model_slots(config, entry);
                let queued = crate::telemetry::metrics::Held::on(
                    &crate::telemetry::metrics::METRICS.gateway_queue,
                );
                let _model = model_slots
                    .acquire()
                    .await
                    .expect("semaphores are never closed");
                let _global = self
                    .in_flight
                    .acquire()
                    .await
                    .expect("semaphores are never closed");
                drop(queued);
                endpoint.client.complete(call).await
            };
            let schema = request.schema.is_some();
            let text_tools = !call.caps.tools && !request.tools.is_empty();
            let result = result.map(|mut reply| {
                if text_tools && let Some(calls) = tools::parse_text_calls(&reply.text) {
                    reply.tool_calls = calls;
                }
                reply
            });
            match result.and_then(|reply| with_json(reply, schema, request.caller_parses)) {
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
                    match next_step(&config.retry, attempt, retry_after, rand::random()) {
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
    // A reply that calls tools is not the final answer the schema describes.
    if !schema || !reply.tool_calls.is_empty() {
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
