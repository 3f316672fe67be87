/**
 * The ARNs airdock names resources by, in AWS's formats (reference `mwaa-api-and-behaviour.md`
 * §2 "ARN formats"; IAM and KMS as AWS writes them). The partition is always `aws`.
 */

/** `arn:aws:airflow:{region}:{accountId}:environment/{name}`. */
export function environmentArn(region: string, accountId: string, name: string): string {
  return `arn:aws:airflow:${region}:${accountId}:environment/${name}`
}

/**
 * `arn:aws:airflow:{region}:{accountId}:role/{environment}/{role}`: the IAM resource of an
 * Airflow role (CreateWebLoginToken, InvokeRestApi); `role` may be `*`.
 */
export function airflowRoleArn(
  region: string,
  accountId: string,
  environment: string,
  role: string,
): string {
  return `arn:aws:airflow:${region}:${accountId}:role/${environment}/${role}`
}

/** `arn:aws:iam::{accountId}:user/{name}`. */
export function iamUserArn(accountId: string, name: string): string {
  return `arn:aws:iam::${accountId}:user/${name}`
}

/** `arn:aws:kms:{region}:{accountId}:key/{keyId}`. */
export function kmsKeyArn(region: string, accountId: string, keyId: string): string {
  return `arn:aws:kms:${region}:${accountId}:key/${keyId}`
}

/** A KMS key id: a lowercase UUID (regular-expression source, no anchors). */
export const KMS_KEY_ID_SOURCE = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'
