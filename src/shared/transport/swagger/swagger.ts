import type { NestExpressApplication } from '@nestjs/platform-express';
import { SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import { SWAGGER_DOCUMENT } from './swagger.document';

/**
 * Serves the Swagger UI at /swagger/ and our OpenAPI 2 document at /swagger/swagger.json (the
 * paths of upstream). Must run before `app.init()` so that the routes precede the 404 handler.
 */
export function setupSwagger(app: NestExpressApplication): void {
  // @nestjs/swagger types documents as OpenAPI 3, but serves any object; swagger-ui reads 2.0.
  const document = SWAGGER_DOCUMENT as unknown as OpenAPIObject;
  SwaggerModule.setup('swagger', app, () => document, {
    jsonDocumentUrl: 'swagger/swagger.json',
    raw: ['json'],
    swaggerOptions: { url: '/swagger/swagger.json' },
  });
}
