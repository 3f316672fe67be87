import { describe, expect, it } from 'vitest'
import { InvalidBucketNameError, assertBucketName, bucketNameProblem } from './object-store.js'

describe('bucketNameProblem (S3 general purpose bucket naming rules)', () => {
  it.each([
    'abc',
    'my-bucket',
    'airflow.dags-1',
    '123',
    'a'.repeat(63),
    'xn-not-reserved',
    'my-s3alias-bucket',
  ])('accepts %j', (name) => {
    expect(bucketNameProblem(name)).toBeUndefined()
    expect(() => assertBucketName(name)).not.toThrow()
  })

  it.each([
    ['b', /3-63 characters long \(it has 1\)/],
    ['ab', /3-63 characters long \(it has 2\)/],
    ['a'.repeat(64), /3-63 characters long \(it has 64\)/],
    ['Bad_Name', /lowercase letters, digits/],
    ['UPPER', /lowercase letters, digits/],
    ['-starts-with-dash', /start and end with a letter or digit/],
    ['ends-with-dot.', /start and end with a letter or digit/],
    ['a/b', /lowercase letters, digits/],
    ['a..b', /two adjacent periods/],
    ['192.168.5.4', /IP address/],
    ['xn--bucket', /must not start with "xn--"/],
    ['sthree-bucket', /must not start with "sthree-"/],
    ['amzn-s3-demo-bucket', /must not start with "amzn-s3-demo-"/],
    ['bucket-s3alias', /must not end with "-s3alias"/],
    ['bucket--ol-s3', /must not end with "--ol-s3"/],
    ['bucket.mrap', /must not end with ".mrap"/],
    ['bucket--x-s3', /must not end with "--x-s3"/],
    ['bucket--table-s3', /must not end with "--table-s3"/],
  ])('refuses %j', (name, reason) => {
    expect(bucketNameProblem(name)).toMatch(reason)
    expect(() => assertBucketName(name)).toThrow(InvalidBucketNameError)
  })
})
