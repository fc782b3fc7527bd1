/** Types shared by the LLM client, the prompts and the activities. */

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** The JSON schema a structured reply must follow (OpenAI `response_format: json_schema`). */
export interface JsonSchemaFormat {
  name: string;
  schema: Readonly<Record<string, unknown>>;
}
