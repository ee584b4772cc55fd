// Service descriptors: what code generation emits from a WSDL (operations, actions, element
// shapes) and what the generic codec, client and service host consume. Data only, no behaviour.

export type SimpleType = 'string' | 'int' | 'long' | 'boolean' | 'base64' | 'dateTime' | 'double'

export type FieldType =
  | { readonly kind: 'simple', readonly name: SimpleType }
  | { readonly kind: 'enum', readonly name: string, readonly values: readonly string[] }
  | { readonly kind: 'complex', readonly name: string }
  /** xs:choice of references to global elements; decoded as `{ [ElementName]: value }`. */
  | { readonly kind: 'choice', readonly elements: readonly string[] }

export interface FieldDescriptor {
  readonly name: string
  readonly type: FieldType
  readonly optional: boolean
  readonly repeated: boolean
}

export interface OperationDescriptor {
  readonly name: string
  readonly soapAction: string
  readonly input: string
  readonly output: string
  readonly fault: string
  readonly documentation?: string
}

export interface ServiceDescriptor {
  readonly name: string
  readonly namespace: string
  /** Complex types by name; global elements with anonymous types are listed under the element's name. */
  readonly types: Readonly<Record<string, readonly FieldDescriptor[]>>
  /** Global elements: name → the type they carry. */
  readonly elements: Readonly<Record<string, FieldType>>
  readonly operations: Readonly<Record<string, OperationDescriptor>>
}
