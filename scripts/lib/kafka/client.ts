// The Kafka client as the consumer and the producer build it: brokers, TLS, SASL, the client's
// own log level and its retries.
import { Kafka, type KafkaConfig, logLevel, type SASLOptions } from "kafkajs";

export interface ClientSettings {
  brokers: string[];
  clientId?: string;
  /** TLS: true, or a PEM CA bundle to trust */
  ssl?: boolean | { ca: string };
  sasl?: {
    mechanism: "plain" | "scram-sha-256" | "scram-sha-512";
    username: string;
    password: string;
  };
}

export function kafkaClient(s: ClientSettings): Kafka {
  const config: KafkaConfig = {
    brokers: s.brokers,
    clientId: s.clientId ?? "ecommerce-pipeline",
    // KAFKAJS_LOG_LEVEL=warn|info|debug shows the client's own log (on stderr)
    logLevel: ({
      error: logLevel.ERROR,
      warn: logLevel.WARN,
      info: logLevel.INFO,
      debug: logLevel.DEBUG,
    } as Record<string, logLevel>)[
      Deno.env.get("KAFKAJS_LOG_LEVEL") ?? ""
    ] ?? logLevel.NOTHING,
    retry: { retries: 8, initialRetryTime: 200, maxRetryTime: 5_000 },
  };
  if (s.ssl) config.ssl = s.ssl === true ? true : { ca: [s.ssl.ca] };
  if (s.sasl) config.sasl = s.sasl as SASLOptions;
  return new Kafka(config);
}
